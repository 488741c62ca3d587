"""Disclosure control (docs/disclosure.md): no suppressed cell can be recovered by differencing.

A small hand-made core world (one day, exact counts) runs through the real ledger and mart assets:
an area "hall" with venues "stage" (under k) and "cafe", an area "park" without venues; Danes,
Norwegians and a municipality under k. An attacker who sees only the published marts then tries
every relation (totals minus published parts, area minus venues, country SE minus municipalities),
by substitution and by linear programming. The same attacks on a primary-only publication of the
same world succeed: the attacks are real and the tests can fail.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest
from scipy.optimize import linprog

from crowd_platform.defs.core.assets import visitor_days, zone_presence_hourly
from crowd_platform.defs.marts.assets import marts_assets
from crowd_platform.defs.marts.disclosure import (
    HOME_MUNICIPALITY_DAILY,
    ORIGIN_COUNTRY_DAILY,
    ZONE_DAILY,
    CellKey,
    build_relations,
    suppress,
)
from crowd_platform.methodology import Methodology
from crowd_platform.warehouse import Warehouse, load_sql
from crowd_platform_tests.conftest import FIRST_DAY, BuiltWorld, write_zone_attribution

DAY = FIRST_DAY
SHARE = 0.4
K = 10
ZONES = [("hall", "area", None), ("stage", "venue", "hall"), ("cafe", "venue", "hall"), ("park", "area", None)]
# (zones visited, country, home municipality, how many devices). Stage and cafe lie in the hall:
# their visitors are in the hall too. Unknown homes (None with SE) are the unpublished residual.
GROUPS = [
    (("hall", "stage"), "SE", "1283", 4),  # stage: 4 devices, under k
    (("hall", "cafe"), "SE", "1283", 8),
    (("hall", "cafe"), "SE", "1280", 5),
    (("hall", "cafe"), "DK", None, 2),
    (("hall",), "SE", "1283", 12),
    (("hall",), "SE", "1280", 7),
    (("hall",), "SE", "1292", 3),  # municipality 1292 in the hall: 3 devices, under k
    (("hall",), "SE", None, 2),
    (("hall",), "DK", None, 4),  # Danes in the hall: 6, under k
    (("hall",), "NO", None, 2),
    (("park",), "SE", "1283", 20),
    (("park",), "DK", None, 5),  # park: 20 Swedes, 5 Danes
]
MARTS = {  # mart -> (group column, count column)
    "marts.zone_daily": (None, "visitors"),
    "marts.origin_country_daily": ("country_iso2", "visitors"),
    "marts.home_municipality_daily": ("municipality_code", "visitors"),
    "marts.zone_hourly": ("hour", "present"),
}


# ---------------------------------------------------------------------------------------------
# The hand-made world and its publication


def write_core_world(path: Path) -> None:
    """reference.zones, core.zone_visits and core.device_weights of one day, as the marts read them."""
    visit_start = dt.datetime.combine(DAY, dt.time(10), dt.UTC)
    visits, weights, device = [], [], 0
    for zones, country, municipality, count in GROUPS:
        for _ in range(count):
            device += 1
            key = f"device-{device:03d}"
            weights.append(
                (DAY, key, "municipality" if municipality else "national", municipality or "SE", SHARE, 0.001)
            )
            for zone in zones:
                visits.append((DAY, key, zone, visit_start, visit_start + dt.timedelta(minutes=50), 3000.0, True,
                               "domestic_visitor" if country == "SE" else "international_visitor", country,
                               municipality))  # fmt: skip
    with duckdb.connect(str(path)) as con:
        for schema in ("reference", "core", "marts"):
            con.execute(f"CREATE SCHEMA {schema}")
        con.execute(
            "CREATE TABLE reference.zones (zone_id VARCHAR, name VARCHAR, kind VARCHAR, parent_zone_id VARCHAR, "
            "municipality_code VARCHAR)"
        )
        con.executemany("INSERT INTO reference.zones VALUES (?, ?, ?, ?, '1283')", [(z, z, k, p) for z, k, p in ZONES])
        write_zone_attribution(con)
        con.execute(
            "CREATE TABLE core.zone_visits (event_date DATE, device_key VARCHAR, zone_id VARCHAR, "
            "visit_start TIMESTAMPTZ, visit_end TIMESTAMPTZ, dwell_s DOUBLE, is_visit BOOLEAN, visitor_class VARCHAR, "
            "origin_country VARCHAR, home_municipality VARCHAR)"
        )
        con.executemany("INSERT INTO core.zone_visits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", visits)
        con.execute(
            "CREATE TABLE core.device_weights (event_date DATE, device_key VARCHAR, share_basis VARCHAR, "
            "share_group VARCHAR, share DOUBLE, share_rel_var DOUBLE)"
        )
        con.executemany("INSERT INTO core.device_weights VALUES (?, ?, ?, ?, ?, ?)", weights)


def materialise_marts(path: Path, k: int) -> dg.ExecuteInProcessResult:
    """The ledger and the four marts for DAY, with their checks, on the world at `path` (and the visitor-days
    and hourly presence that they read, derived from its core.zone_visits)."""
    return dg.materialize(
        [visitor_days, zone_presence_hourly, *marts_assets],
        partition_key=DAY.isoformat(),
        resources={"warehouse": Warehouse(database=str(path)), "methodology": Methodology(min_group_devices=k)},
    )


@dataclass(frozen=True)
class Published:
    """What an outsider sees: per cell (mart, zone, key) the published count (None if suppressed)
    and the suppression rule, and which zone lies in which."""

    counts: dict[tuple[str, str, str], int | None]
    rules: dict[tuple[str, str, str], str | None]
    parent_zone: dict[str, str | None]


def read_publication(path: Path, day: dt.date = DAY) -> Published:
    counts, rules = {}, {}
    with duckdb.connect(str(path), read_only=True) as con:
        for mart, (group, count) in MARTS.items():
            key = f"CAST({group} AS VARCHAR)" if group else "''"
            rows = con.execute(
                f"SELECT zone_id, {key}, {count}, suppression_rule FROM {mart} WHERE event_date = ?", [day]
            ).fetchall()
            for zone, group_key, value, rule in rows:
                counts[(mart, zone, group_key)] = value
                rules[(mart, zone, group_key)] = rule
        parents = dict(con.execute("SELECT zone_id, parent_zone_id FROM reference.zones").fetchall())
    return Published(counts, rules, parents)


def true_counts(path: Path, day: dt.date = DAY) -> dict[tuple[str, str, str], int]:
    """The unsuppressed device counts of every cell (the truth an attacker wants), from core."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT mart, zone_id, coalesce(CAST(hour AS VARCHAR), group_key, ''), visitors "
            f"FROM ({load_sql('marts/suppression_ledger')})",
            {"first_day": day, "last_day": day},
        ).fetchall()
    return {(mart, zone, key): int(n) for mart, zone, key, n in rows}


def primary_only(truth: dict[tuple[str, str, str], int], parents: dict[str, str | None], k: int) -> Published:
    """The publication without secondary suppression: only cells under k hidden."""
    counts = {cell: (n if n >= k else None) for cell, n in truth.items()}
    rules = {cell: (None if n >= k else "primary_k") for cell, n in truth.items()}
    return Published(counts, rules, parents)


# ---------------------------------------------------------------------------------------------
# The attacker: relations among published cells, written independently of the pipeline's code


@dataclass(frozen=True)
class AttackRelation:
    total: tuple[str, str, str]
    parts: tuple[tuple[str, str, str], ...]
    exact: bool  # False: an unpublished residual (unknown homes, rest of the area) completes the sum


def attack_relations(published: Published) -> list[AttackRelation]:
    cells = set(published.counts)
    relations = []

    def add(total: tuple[str, str, str], parts: list[tuple[str, str, str]], exact: bool) -> None:
        parts = [p for p in parts if p in cells]
        if total in cells and parts:
            relations.append(AttackRelation(total, tuple(sorted(parts)), exact))

    zones = {zone for _, zone, _ in cells}
    for zone in zones:
        countries = [c for c in cells if c[0] == "marts.origin_country_daily" and c[1] == zone]
        municipalities = [c for c in cells if c[0] == "marts.home_municipality_daily" and c[1] == zone]
        total = ("marts.zone_daily", zone, "")
        add(total, countries, exact=True)  # zone-day = its countries
        add(("marts.origin_country_daily", zone, "SE"), municipalities, exact=False)  # SE = municipalities + unknown
        add(total, [c for c in countries if c[2] != "SE"] + municipalities, exact=False)  # round a hidden SE
        venues = [v for v, parent in published.parent_zone.items() if parent == zone]
        for mart, zone_of_cell, key in cells:
            if zone_of_cell == zone and venues:  # area = its venues + the rest of the area
                add((mart, zone, key), [(mart, v, key) for v in venues], exact=False)
    return relations


def differencing_attack(published: Published) -> dict[tuple[str, str, str], int]:
    """Subtract published values along every exact relation, re-using what was recovered, until
    nothing new comes out. Returns the suppressed cells it recovered, with their values."""
    known = {cell: n for cell, n in published.counts.items() if n is not None}
    recovered: dict[tuple[str, str, str], int] = {}
    progress = True
    while progress:
        progress = False
        for relation in attack_relations(published):
            unknown = [c for c in (relation.total, *relation.parts) if c not in known]
            if not relation.exact or len(unknown) != 1:
                continue
            cell = unknown[0]
            parts_known = sum(known[p] for p in relation.parts if p != cell)
            value = known[relation.total] - parts_known if cell != relation.total else parts_known
            known[cell] = recovered[cell] = value
            progress = True
    return recovered


def interval_attack(published: Published, k: int) -> dict[tuple[str, str, str], tuple[float, float]]:
    """The tightest bounds on every suppressed cell given ALL relations at once and the public
    meaning of the rules (primary: 1..k-1 devices, secondary: at least k), by linear programming."""
    relations = attack_relations(published)
    hidden = sorted(cell for cell, n in published.counts.items() if n is None)
    residuals = [i for i, r in enumerate(relations) if not r.exact]
    index = {cell: i for i, cell in enumerate(hidden)}
    n_vars = len(hidden) + len(residuals)
    rows, rhs = [], []
    for number, relation in enumerate(relations):  # total - parts - residual = 0
        row, constant = np.zeros(n_vars), 0.0
        for cell, sign in [(relation.total, 1.0), *((p, -1.0) for p in relation.parts)]:
            if cell in index:
                row[index[cell]] += sign
            else:
                constant -= sign * published.counts[cell]  # type: ignore[operator]
        if not relation.exact:
            row[len(hidden) + residuals.index(number)] = -1.0
        rows.append(row)
        rhs.append(constant)
    bounds = [(1, k - 1) if published.rules[cell] == "primary_k" else (k, None) for cell in hidden]
    bounds += [(0, None)] * len(residuals)
    intervals = {}
    for cell in hidden:
        objective = np.zeros(n_vars)
        objective[index[cell]] = 1.0
        low = linprog(objective, A_eq=np.array(rows), b_eq=np.array(rhs), bounds=bounds)
        high = linprog(-objective, A_eq=np.array(rows), b_eq=np.array(rhs), bounds=bounds)
        assert low.status == 0 and high.status in (0, 3), (cell, low.message, high.message)  # 3: unbounded
        intervals[cell] = (low.fun, np.inf if high.status == 3 else -high.fun)
    return intervals


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def hand_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("disclosure") / "warehouse.duckdb"
    write_core_world(path)
    result = materialise_marts(path, K)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]
    yield path


# ---------------------------------------------------------------------------------------------
# Tests


def test_the_attacks_recover_cells_of_a_primary_only_publication(hand_world: Path) -> None:
    """Control: without secondary suppression, subtraction recovers the park's Danes exactly and the
    bounds pin other small cells far below k: the attacks below would notice a weak rule."""
    truth = true_counts(hand_world)
    naive = primary_only(truth, read_publication(hand_world).parent_zone, K)
    recovered = differencing_attack(naive)
    assert recovered and all(truth[cell] == value for cell, value in recovered.items())
    assert ("marts.origin_country_daily", "park", "DK") in recovered
    narrowed = {cell for cell, (_, high) in interval_attack(naive, K).items() if high < K - 1}
    assert ("marts.origin_country_daily", "hall", "DK") in narrowed  # DK + NO = hall - SE = 8


def test_no_suppressed_cell_is_recovered_by_subtraction(hand_world: Path) -> None:
    published = read_publication(hand_world)
    assert {cell for cell, rule in published.rules.items() if rule == "primary_k"} >= {
        ("marts.origin_country_daily", "hall", "DK"),
        ("marts.origin_country_daily", "park", "DK"),
        ("marts.home_municipality_daily", "hall", "1292"),
        ("marts.zone_daily", "stage", ""),
    }
    assert differencing_attack(published) == {}


def test_the_published_figures_never_narrow_a_primary_cell(hand_world: Path) -> None:
    """Given every relation at once, each cell suppressed under k could still hold anything from 1 to
    k - 1 devices, and no secondary cell is pinned to one value."""
    published = read_publication(hand_world)
    intervals = interval_attack(published, K)
    assert intervals
    for cell, (low, high) in intervals.items():
        if published.rules[cell] == "primary_k":
            assert low <= 1 + 1e-6 and high >= K - 1 - 1e-6, (cell, low, high)
        else:
            assert high - low >= 1, (cell, low, high)


def test_every_suppressed_cell_has_one_ledger_row_and_the_ledger_no_counts(hand_world: Path) -> None:
    published = read_publication(hand_world)
    with duckdb.connect(str(hand_world), read_only=True) as con:
        ledger = con.execute(
            "SELECT mart, zone_id, coalesce(CAST(hour AS VARCHAR), group_key, ''), suppression_rule, protected_mart, "
            "protected_zone_id, coalesce(CAST(protected_hour AS VARCHAR), protected_group_key, '') "
            "FROM marts.suppression_ledger WHERE event_date = ?",
            [DAY],
        ).fetchall()
        columns = {
            name
            for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'suppression_ledger'"
            ).fetchall()
        }
    by_cell = {(mart, zone, key): (rule, (pmart, pzone, pkey)) for mart, zone, key, rule, pmart, pzone, pkey in ledger}
    assert len(by_cell) == len(ledger)
    suppressed = {cell: rule for cell, rule in published.rules.items() if rule is not None}
    assert {cell: rule for cell, (rule, _) in by_cell.items()} == suppressed
    assert any(rule.startswith("secondary_") for rule in suppressed.values())
    for cell, (rule, protected) in by_cell.items():
        if rule.startswith("secondary_"):
            assert protected in suppressed and protected != cell, cell  # it shields a suppressed cell
        else:
            assert protected[0] is None, cell
    assert not columns & {"visits", "visitors", "present", "visits_est", "visitors_est", "present_est"}


def test_k_is_configurable(hand_world: Path, tmp_path: Path) -> None:
    """k = 3 publishes the stage (4 devices) and the hall's municipality 1292 (3) that k = 10
    suppresses, and still protects the cells under 3 (the hall's Norwegians)."""
    path = tmp_path / "k3.duckdb"
    write_core_world(path)
    result = materialise_marts(path, 3)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    at_3, at_10 = read_publication(path), read_publication(hand_world)
    for cell, devices in [
        (("marts.zone_daily", "stage", ""), 4),
        (("marts.home_municipality_daily", "hall", "1292"), 3),
    ]:
        assert at_10.rules[cell] == "primary_k" and at_3.counts[cell] == devices
    assert at_3.rules[("marts.origin_country_daily", "hall", "NO")] == "primary_k"
    assert {c for c, r in at_3.rules.items() if r} != {c for c, r in at_10.rules.items() if r}
    assert all(n is None or n >= 3 for n in at_3.counts.values())
    assert differencing_attack(at_3) == {}
    for cell, (low, high) in interval_attack(at_3, 3).items():
        assert high - low >= 1, cell


def test_a_published_cell_that_opens_a_relation_fails_the_blocking_check(hand_world: Path, tmp_path: Path) -> None:
    """Tamper with the publication (show the park's Swedes, which protect its Danes): the country
    relation check counts it, so the run would stop before the bad rows flow on."""
    from crowd_platform.defs.marts.assets import COUNTRY_RELATION

    path = tmp_path / "tampered.duckdb"
    path.write_bytes(hand_world.read_bytes())
    with duckdb.connect(str(path)) as con:
        params = {"first_day": DAY, "last_day": DAY, "k": K}
        assert con.execute(COUNTRY_RELATION.violations, params).fetchone() == (0,)
        con.execute(
            "UPDATE marts.origin_country_daily SET visitors = 20, suppressed = false, suppression_rule = NULL "
            "WHERE zone_id = 'park' AND country_iso2 = 'SE'"
        )
        assert con.execute(COUNTRY_RELATION.violations, params).fetchone() == (1,)
    assert COUNTRY_RELATION.blocking


def random_world(seed: int) -> tuple[dict[CellKey, int], dict[str, str | None]]:
    """Device counts of the cells of a random day: zones, venues, countries and municipalities."""
    rng = random.Random(seed)
    parents: dict[str, str | None] = {"hall": None, "stage": "hall", "cafe": "hall", "park": None}
    counts: dict[CellKey, int] = {}
    for _ in range(rng.randint(30, 150)):
        # Venues are disjoint here: the linear-programming attacker assumes so (area = venues + rest).
        zones = rng.choice([("hall",), ("hall", "stage"), ("hall", "cafe"), ("park",)])
        country = rng.choice(["SE"] * 8 + ["DK", "NO", "DE", "FI"])
        municipality = rng.choice(["1283", "1280", "1292", "1290", None]) if country == "SE" else None
        for zone in zones:
            cells = [CellKey(ZONE_DAILY, zone), CellKey(ORIGIN_COUNTRY_DAILY, zone, group_key=country)]
            if municipality:
                cells.append(CellKey(HOME_MUNICIPALITY_DAILY, zone, group_key=municipality))
            for cell in cells:
                counts[cell] = counts.get(cell, 0) + 1
    return counts, parents


def test_random_worlds_never_give_a_cell_away() -> None:
    """The rule alone (no pipeline) on random days: subtraction recovers nothing, and no suppressed
    cell is pinned to one value even by an attacker who combines every relation."""
    for seed in range(25):
        counts, parents = random_world(seed)
        decided = suppress(counts, build_relations(counts, parents), K)
        assert all(cell in decided for cell, n in counts.items() if n < K)

        def key(cell: CellKey) -> tuple[str, str, str]:
            return (cell.mart, cell.zone_id, cell.group_key or "")

        published = Published(
            {key(c): (None if c in decided else n) for c, n in counts.items()},
            {key(c): (decided[c].rule if c in decided else None) for c in counts},
            parents,
        )
        assert differencing_attack(published) == {}, seed
        for cell, (low, high) in interval_attack(published, K).items():
            assert high - low >= 1 - 1e-6, (seed, cell, low, high)


def test_estimates_are_rounded_to_ten_inside_outward_intervals(world: BuiltWorld) -> None:
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT visitors_est, visitors_est_low, visitors_est_high, visits_est, visits_est_low, visits_est_high "
            "FROM marts.zone_daily WHERE NOT suppressed"
        ).fetchall()
        others = con.execute(
            "SELECT visitors_est FROM marts.origin_country_daily WHERE NOT suppressed "
            "UNION ALL SELECT visitors_est FROM marts.home_municipality_daily WHERE NOT suppressed "
            "UNION ALL SELECT present_est FROM marts.zone_hourly WHERE NOT suppressed"
        ).fetchall()
    assert rows and others
    for est, low, high, visits_est, visits_low, visits_high in rows:
        assert low <= est <= high and visits_low <= visits_est <= visits_high
        assert all(value % 10 == 0 for value in (est, low, high, visits_est, visits_low, visits_high))
    assert all(value % 10 == 0 for (value,) in others)


def test_the_landing_world_resists_the_differencing_attack(world: BuiltWorld) -> None:
    """End to end from landing files: on every day, subtraction recovers nothing, and every
    suppressed row is in the ledger."""
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        days = [d for (d,) in con.execute("SELECT DISTINCT event_date FROM marts.zone_daily ORDER BY 1").fetchall()]
    assert len(days) > 5
    secondary = 0
    for day in days:
        published = read_publication(world.warehouse, day)
        assert differencing_attack(published) == {}, day
        secondary += sum(1 for rule in published.rules.values() if rule and rule.startswith("secondary_"))
    assert secondary > 0
