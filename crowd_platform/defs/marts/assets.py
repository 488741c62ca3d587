"""Marts: aggregates that may be published; every row obeys the disclosure rules (docs/disclosure.md).

marts.suppression_ledger decides, for each day, which cells are suppressed (primary: under k
devices; secondary: so that no suppressed cell can be recovered by differencing) and every mart
reads its rows' `suppression_rule` from it. The checks audit the published tables as an outsider
could: no published row under k, suppression as the ledger says, and no relation (a total and
its parts) that leaves a suppressed cell open to subtraction.
"""

from __future__ import annotations

import dagster as dg

from crowd_platform.defs.marts.ledger import (
    DEVICE_WEIGHTS,
    LEDGER,
    LEDGER_TABLE,
    VISITOR_DAYS,
    ZONE_PRESENCE_HOURLY,
    suppression_ledger,
)
from crowd_platform.defs.sql_asset import SqlCheck, sql_asset

ZONE_DAILY = dg.AssetKey(["marts", "zone_daily"])
ORIGIN_COUNTRY_DAILY = dg.AssetKey(["marts", "origin_country_daily"])
ZONE_ATTRIBUTION = dg.AssetKey(["reference", "zone_attribution"])
DAYS = "event_date BETWEEN $first_day AND $last_day"


def no_small_groups(table: str, count_column: str) -> SqlCheck:
    return SqlCheck(
        "no_group_under_k",
        "No published row rests on fewer than k distinct devices; suppressed rows carry no counts.",
        f"SELECT count(*) FROM {table} WHERE {DAYS} "
        f"AND ((NOT suppressed AND {count_column} < $k) OR (suppressed AND {count_column} IS NOT NULL))",
    )


def matches_ledger(table: str, keys: dict[str, str]) -> SqlCheck:
    """Suppressed rows and ledger rows are the same cells with the same rule, both ways.

    `keys` maps the mart's key columns to the ledger's (zone_id, hour, group_key)."""
    on = " AND ".join(["l.event_date = m.event_date", *(f"l.{lk} = m.{mk}" for mk, lk in keys.items())])
    ledger = f"(SELECT * FROM {LEDGER_TABLE} WHERE mart = '{table}' AND {DAYS})"
    return SqlCheck(
        "suppression_matches_ledger",
        "Every suppressed row has a ledger row with the same rule, every ledger row a suppressed row, and "
        "suppressed = (suppression_rule IS NOT NULL).",
        f"SELECT (SELECT count(*) FROM {table} AS m LEFT JOIN {ledger} AS l ON {on} WHERE m.{DAYS} "
        "AND (m.suppressed <> (m.suppression_rule IS NOT NULL) "
        "OR (m.suppressed AND l.suppression_rule IS DISTINCT FROM m.suppression_rule))) "
        f"+ (SELECT count(*) FROM {ledger} AS l LEFT JOIN (SELECT * FROM {table} WHERE {DAYS}) AS m ON {on} "
        "WHERE m.suppressed IS DISTINCT FROM true)",
    )


def unsafe_relations(name: str, description: str, cells: str, structural: bool) -> SqlCheck:
    """Counts the relations (a published total and its parts) that leave a suppressed part open to
    differencing, from published values only, by the rule of crowd_platform/defs/marts/disclosure.py.

    `cells` yields event_date, relation_key, role ('total' or 'part'), visitors, suppression_rule."""
    exact = "false" if structural else "true"
    return SqlCheck(
        name,
        description,
        f"""
        WITH cells AS ({cells}),
        totals AS (SELECT * FROM cells WHERE role = 'total'),
        parts AS (
            SELECT event_date, relation_key,
                   coalesce(sum(visitors) FILTER (WHERE suppression_rule IS NULL), 0) AS published_sum,
                   count(*) FILTER (WHERE suppression_rule = 'primary_k') AS n_primary,
                   count(*) FILTER (WHERE suppression_rule LIKE 'secondary%') AS n_secondary,
                   count(*) FILTER (WHERE suppression_rule IS NULL) AS n_published
            FROM cells WHERE role = 'part'
            GROUP BY ALL
        )
        SELECT count(*)
        FROM totals JOIN parts USING (event_date, relation_key)
        WHERE (totals.suppression_rule IS NULL AND n_primary + n_secondary > 0
               AND (totals.visitors - published_sum - $k * n_secondary < $k
                    OR ({exact} AND (n_secondary = 0 OR n_primary + n_secondary < 2))))
           OR (totals.suppression_rule LIKE 'secondary%' AND {exact} AND n_published > 0 AND n_secondary = 0)
        """,
    )


def venue_relation(table: str, group: str, count_column: str = "visitors") -> SqlCheck:
    """An area's row contains its venues' rows of the same group (`group`: an expression over the
    mart's row `m`, e.g. its country, municipality or hour)."""
    cells = (
        f"SELECT m.event_date, m.zone_id || '|' || {group} AS relation_key, 'total' AS role, "
        f"m.{count_column} AS visitors, m.suppression_rule FROM {table} AS m WHERE m.{DAYS} "
        "AND m.zone_id IN (SELECT parent_zone_id FROM reference.zones WHERE parent_zone_id IS NOT NULL) "
        f"UNION ALL SELECT m.event_date, z.parent_zone_id || '|' || {group}, 'part', m.{count_column}, "
        f"m.suppression_rule FROM {table} AS m JOIN reference.zones AS z USING (zone_id) "
        f"WHERE m.{DAYS} AND z.parent_zone_id IS NOT NULL"
    )
    return unsafe_relations(
        "venues_protect_suppressed_cells",
        "Area minus its venues (in the same group) never reveals a suppressed venue: the hidden remainder, less "
        "k per secondary suppression, is at least k (blocking).",
        cells,
        structural=True,
    )


COUNTRY_RELATION = unsafe_relations(
    "countries_protect_suppressed_cells",
    "A zone-day's visitors minus its published countries never reveals a suppressed country (each SIM has one "
    "country: an exact sum), nor is a suppressed zone-day the sum of its countries (blocking).",
    f"SELECT event_date, zone_id AS relation_key, 'total' AS role, visitors, suppression_rule "
    f"FROM marts.zone_daily WHERE {DAYS} "
    f"UNION ALL SELECT event_date, zone_id, 'part', visitors, suppression_rule FROM marts.origin_country_daily "
    f"WHERE {DAYS}",
    structural=False,
)

MUNICIPALITY_RELATION = unsafe_relations(
    "municipalities_protect_suppressed_cells",
    "A zone-day's Swedish visitors (country SE) minus its published municipalities never reveals a suppressed "
    "municipality; the rest includes devices of unknown home (blocking).",
    f"SELECT event_date, zone_id AS relation_key, 'total' AS role, visitors, suppression_rule "
    f"FROM marts.origin_country_daily WHERE {DAYS} AND country_iso2 = 'SE' "
    f"UNION ALL SELECT event_date, zone_id, 'part', visitors, suppression_rule FROM marts.home_municipality_daily "
    f"WHERE {DAYS}",
    structural=True,
)

COUNTRY_MUNICIPALITY_RELATION = unsafe_relations(
    "countries_and_municipalities_protect_suppressed_cells",
    "A zone-day's visitors minus its published foreign countries and published municipalities (the way round a "
    "suppressed SE row) never reveals a suppressed cell (blocking).",
    f"SELECT event_date, zone_id AS relation_key, 'total' AS role, visitors, suppression_rule "
    f"FROM marts.zone_daily WHERE {DAYS} "
    f"UNION ALL SELECT event_date, zone_id, 'part', visitors, suppression_rule FROM marts.origin_country_daily "
    f"WHERE {DAYS} AND country_iso2 <> 'SE' "
    f"UNION ALL SELECT event_date, zone_id, 'part', visitors, suppression_rule FROM marts.home_municipality_daily "
    f"WHERE {DAYS}",
    structural=True,
)

zone_daily = sql_asset(
    "marts",
    "zone_daily",
    "Visits and visitors per zone and day, raw and extrapolated to the population with 95 % "
    "intervals (sampling and zone attribution error; estimates rounded to 10), and the median dwell; "
    "suppressed cells (under k devices, or protecting one) per marts.suppression_ledger.",
    deps=[VISITOR_DAYS, DEVICE_WEIGHTS, LEDGER, ZONE_ATTRIBUTION],
    checks=[
        no_small_groups("marts.zone_daily", "visitors"),
        SqlCheck(
            "intervals_contain_estimates",
            "low <= estimate <= high for visitors and visits.",
            "SELECT count(*) FROM marts.zone_daily WHERE event_date BETWEEN $first_day AND $last_day "
            "AND NOT suppressed AND NOT (visitors_est_low <= visitors_est AND visitors_est <= visitors_est_high "
            "AND visits_est_low <= visits_est AND visits_est <= visits_est_high)",
        ),
        matches_ledger("marts.zone_daily", {"zone_id": "zone_id"}),
        venue_relation("marts.zone_daily", "''"),
    ],
)

zone_hourly = sql_asset(
    "marts",
    "zone_hourly",
    "Distinct people present in each zone at some moment of each local hour, extrapolated (rounded to 10), "
    "for crowd management; suppressed cells per marts.suppression_ledger.",
    deps=[ZONE_PRESENCE_HOURLY, LEDGER],
    checks=[
        no_small_groups("marts.zone_hourly", "present"),
        matches_ledger("marts.zone_hourly", {"zone_id": "zone_id", "hour": "hour"}),
        venue_relation("marts.zone_hourly", "CAST(m.hour AS VARCHAR)", count_column="present"),
    ],
)

# The breakdowns depend on the tables that hold their totals: their checks audit those sums.
origin_country_daily = sql_asset(
    "marts",
    "origin_country_daily",
    "Visits and visitors per zone, day and origin country (home network of the SIM), "
    "extrapolated (rounded to 10); suppressed cells per marts.suppression_ledger.",
    deps=[VISITOR_DAYS, DEVICE_WEIGHTS, LEDGER, ZONE_DAILY],
    checks=[
        no_small_groups("marts.origin_country_daily", "visitors"),
        matches_ledger("marts.origin_country_daily", {"zone_id": "zone_id", "country_iso2": "group_key"}),
        COUNTRY_RELATION,
        venue_relation("marts.origin_country_daily", "m.country_iso2"),
    ],
)

home_municipality_daily = sql_asset(
    "marts",
    "home_municipality_daily",
    "Visits and visitors per zone, day and home municipality (Swedish SIMs with a known home), "
    "extrapolated (rounded to 10); suppressed cells per marts.suppression_ledger.",
    deps=[VISITOR_DAYS, DEVICE_WEIGHTS, LEDGER, ZONE_DAILY, ORIGIN_COUNTRY_DAILY],
    checks=[
        no_small_groups("marts.home_municipality_daily", "visitors"),
        matches_ledger("marts.home_municipality_daily", {"zone_id": "zone_id", "municipality_code": "group_key"}),
        MUNICIPALITY_RELATION,
        COUNTRY_MUNICIPALITY_RELATION,
        venue_relation("marts.home_municipality_daily", "m.municipality_code"),
    ],
)

marts_assets = [suppression_ledger, zone_daily, zone_hourly, origin_country_daily, home_municipality_daily]
