"""Disclosure control of the daily marts: primary and secondary (complementary) cell suppression.

A *cell* is one row of a mart (a zone-day, a zone-day-country, a zone-day-municipality, a
zone-hour); its size is the number of distinct devices behind it. A *relation* is a published
total with the parts that add up to it, e.g. a zone-day's visitors = the sum of its countries'
visitors. docs/disclosure.md explains the relations and the rule; in short:

- primary: a cell under k devices is suppressed (`primary_k`);
- secondary: wherever a relation holds a suppressed part, the published values of that relation
  must leave the suppressed parts hidden. The attacker is assumed to know every published value,
  every relation, and the public meaning of the rules: a `primary_k` cell holds 1..k-1 devices, a
  `secondary_*` cell at least k. A relation is safe when
    (A) the hidden remainder (total minus published parts), less k for every secondary part, is
        still at least k: the primary parts and the unpublished residual together form a group
        of at least k that the attacker cannot split, and
    (B) in an exact partition, some hidden part is unbounded above (a secondary part) and no
        suppressed part is alone: with primary parts only (k-1 at most each) lower bounds could
        rise above 1, and joined with other relations pin a cell. A relation with an unpublished
        residual (unknown homes, the rest of an area) needs no more than (A).
  A suppressed total (secondary) of an exact partition must not be the sum of its published
  parts: one of its parts is suppressed too.

When a relation is unsafe, the smallest published part whose suppression alone makes it safe is
suppressed (`secondary_<relation>`); if none suffices, the largest, and the relation is assessed
again; if every part is already hidden, the total itself. Relations are visited in a fixed order
and revisited until none changes, so the outcome is deterministic (ties by cell key).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

ZONE_DAILY = "marts.zone_daily"
ORIGIN_COUNTRY_DAILY = "marts.origin_country_daily"
HOME_MUNICIPALITY_DAILY = "marts.home_municipality_daily"
ZONE_HOURLY = "marts.zone_hourly"
MARTS = (ZONE_DAILY, ORIGIN_COUNTRY_DAILY, HOME_MUNICIPALITY_DAILY, ZONE_HOURLY)

PRIMARY = "primary_k"
SWEDEN = "SE"

# Relation names (the rule of a secondary suppression is `secondary_<name>`), in the order in
# which they are visited: zone totals first, then the breakdowns under them.
VENUE = "venue"  # an area's cell contains its venues' cells (same mart, same group / hour)
COUNTRY = "country"  # a zone-day's visitors = sum over origin countries (each SIM has one)
MUNICIPALITY = "municipality"  # a zone-day's SE visitors = sum over home municipalities + unknown homes
COUNTRY_MUNICIPALITY = "country_municipality"  # zone-day = other countries + municipalities + unknown homes
RELATION_ORDER = (VENUE, COUNTRY, MUNICIPALITY, COUNTRY_MUNICIPALITY)


class CellKey(NamedTuple):
    """One published row: the mart, its zone, its hour (zone_hourly) and its group key (country or
    municipality code), None where the mart has no such key."""

    mart: str
    zone_id: str
    hour: int | None = None
    group_key: str | None = None

    def order(self) -> tuple[int, str, int, str]:
        return (MARTS.index(self.mart), self.zone_id, -1 if self.hour is None else self.hour, self.group_key or "")


@dataclass(frozen=True)
class Relation:
    """total = sum(parts) (+ an unpublished residual group when `structural`)."""

    name: str
    total: CellKey
    parts: tuple[CellKey, ...]
    # True when the parts do not exhaust the total by construction: devices with an unknown
    # home, the rest of an area outside its venues. The residual is unpublished and unbounded.
    structural: bool

    def order(self) -> tuple:
        return (RELATION_ORDER.index(self.name), self.total.order())


@dataclass(frozen=True)
class Suppression:
    """Why a cell is suppressed; `protects` names the cell a secondary suppression shields."""

    cell: CellKey
    rule: str
    protects: CellKey | None = None


def build_relations(cells: Iterable[CellKey], parent_zone: Mapping[str, str | None]) -> list[Relation]:
    """Every relation among the cells of one day (cells are the rows that exist: at least one device)."""
    present = set(cells)
    by_zone: dict[tuple[str, str], list[CellKey]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for zone, parent in parent_zone.items():
        if parent:
            children[parent].append(zone)
    for cell in present:
        by_zone[(cell.mart, cell.zone_id)].append(cell)
    relations: list[Relation] = []

    def add(name: str, total: CellKey, parts: Iterable[CellKey], structural: bool) -> None:
        parts = tuple(sorted((p for p in parts if p in present), key=CellKey.order))
        if total in present and parts:
            relations.append(Relation(name, total, parts, structural))

    zones = sorted({cell.zone_id for cell in present})
    for zone in zones:
        total = CellKey(ZONE_DAILY, zone)
        countries = by_zone.get((ORIGIN_COUNTRY_DAILY, zone), [])
        municipalities = by_zone.get((HOME_MUNICIPALITY_DAILY, zone), [])
        # Exact partition: every SIM has one home network. Devices of unknown country would be a
        # residual, but the attacker may assume there are none, so none is counted on.
        add(COUNTRY, total, countries, structural=False)
        add(MUNICIPALITY, CellKey(ORIGIN_COUNTRY_DAILY, zone, group_key=SWEDEN), municipalities, structural=True)
        if municipalities:
            others = [c for c in countries if c.group_key != SWEDEN]
            add(COUNTRY_MUNICIPALITY, total, [*others, *municipalities], structural=True)
        venues = sorted(children.get(zone, []))
        if not venues:
            continue
        # An area's devices include its venues' (a venue lies inside its area), plus the rest of
        # the area; devices at two venues make the parts overlap. Same for every breakdown.
        for mart in MARTS:
            groups = sorted(
                {(c.hour, c.group_key) for c in by_zone.get((mart, zone), [])},
                key=lambda hg: (-1 if hg[0] is None else hg[0], hg[1] or ""),
            )
            for hour, group in groups:
                add(VENUE, CellKey(mart, zone, hour, group), [CellKey(mart, v, hour, group) for v in venues], True)
    return sorted(relations, key=Relation.order)


def _hidden_remainder_is_safe(hidden: int, n_primary: int, n_secondary: int, structural: bool, k: int) -> bool:
    """Criteria (A) and (B) of the module docstring for a relation with a published total."""
    if n_primary + n_secondary == 0:
        return True
    if hidden - k * n_secondary < k:  # (A)
        return False
    # (B) an exact sum needs a hidden part without an upper bound (a secondary one), and two
    # hidden parts at least (a lone one is the remainder itself).
    return structural or (n_secondary >= 1 and n_primary + n_secondary >= 2)


def _hidden_parts(
    relation: Relation, visitors: Mapping[CellKey, int], rules: Mapping[CellKey, str]
) -> tuple[int, int, int]:
    """(hidden remainder, primary parts, secondary parts) of a relation whose total is published."""
    hidden = visitors[relation.total] - sum(visitors[p] for p in relation.parts if p not in rules)
    n_primary = sum(1 for p in relation.parts if rules.get(p) == PRIMARY)
    n_secondary = sum(1 for p in relation.parts if p in rules and rules[p] != PRIMARY)
    return hidden, n_primary, n_secondary


def relation_is_safe(relation: Relation, visitors: Mapping[CellKey, int], rules: Mapping[CellKey, str], k: int) -> bool:
    total_rule = rules.get(relation.total)
    if total_rule is None:
        return _hidden_remainder_is_safe(*_hidden_parts(relation, visitors, rules), relation.structural, k)
    if total_rule != PRIMARY and not relation.structural:
        # A hidden total of an exact partition: unless a secondary part is hidden too, it is
        # bounded by its published and primary parts (or equal to the published ones).
        published = [p for p in relation.parts if p not in rules]
        return not published or any(rules[p] != PRIMARY for p in relation.parts if p in rules)
    return True


def _protected(relation: Relation, rules: Mapping[CellKey, str]) -> CellKey:
    """The cell a new suppression in this relation shields: its first primary part, else its first
    hidden part, else its total."""
    hidden = [p for p in relation.parts if p in rules]
    primaries = [p for p in hidden if rules[p] == PRIMARY]
    return (primaries or hidden or [relation.total])[0]


def _next_suppression(
    relation: Relation, visitors: Mapping[CellKey, int], rules: Mapping[CellKey, str], k: int
) -> Suppression:
    rule = f"secondary_{relation.name}"
    protects = _protected(relation, rules)
    published = sorted((p for p in relation.parts if p not in rules), key=lambda p: (visitors[p], p.order()))
    if rules.get(relation.total) is not None:  # a hidden total: hide its smallest published part
        return Suppression(published[0], rule, relation.total)
    if not published:  # every part is hidden and still too little is: hide the total
        return Suppression(relation.total, rule, protects)
    hidden, n_primary, n_secondary = _hidden_parts(relation, visitors, rules)
    for candidate in published:  # hiding it adds its devices to the remainder, one secondary part
        if _hidden_remainder_is_safe(hidden + visitors[candidate], n_primary, n_secondary + 1, relation.structural, k):
            return Suppression(candidate, rule, protects)
    return Suppression(published[-1], rule, protects)


def suppress(visitors: Mapping[CellKey, int], relations: Sequence[Relation], k: int) -> dict[CellKey, Suppression]:
    """The suppressed cells of one day: primary (under k) and secondary (until every relation is safe)."""
    decided = {cell: Suppression(cell, PRIMARY) for cell, n in visitors.items() if n < k}
    rules = {cell: s.rule for cell, s in decided.items()}
    changed = True
    while changed:  # each pass may hide cells that other relations share; stop when none changes
        changed = False
        for relation in relations:
            while not relation_is_safe(relation, visitors, rules, k):
                suppression = _next_suppression(relation, visitors, rules, k)
                decided[suppression.cell] = suppression
                rules[suppression.cell] = suppression.rule
                changed = True
    return decided
