"""Marts: aggregates that may be published; every row obeys the disclosure rule (k devices)."""

from __future__ import annotations

import dagster as dg

from crowd_platform.defs.sql_asset import SqlCheck, sql_asset
from crowd_platform.partitions import PREVIOUS_AND_SAME_DAY

ZONE_VISITS = dg.AssetKey(["core", "zone_visits"])
DEVICE_WEIGHTS = dg.AssetKey(["core", "device_weights"])


def no_small_groups(table: str, count_column: str) -> SqlCheck:
    return SqlCheck(
        "no_group_under_k",
        "No published row rests on fewer than k distinct devices; suppressed rows carry no counts.",
        f"SELECT count(*) FROM {table} WHERE event_date BETWEEN $first_day AND $last_day "
        f"AND ((NOT suppressed AND {count_column} < $k) OR (suppressed AND {count_column} IS NOT NULL))",
    )


zone_daily = sql_asset(
    "marts",
    "zone_daily",
    "Visits and visitors per zone and day, raw and extrapolated to the population with 95 % "
    "intervals, and the median dwell; groups under k devices suppressed.",
    deps=[ZONE_VISITS, DEVICE_WEIGHTS],
    checks=[
        no_small_groups("marts.zone_daily", "visitors"),
        SqlCheck(
            "intervals_contain_estimates",
            "low <= estimate <= high for visitors and visits.",
            "SELECT count(*) FROM marts.zone_daily WHERE event_date BETWEEN $first_day AND $last_day "
            "AND NOT suppressed AND NOT (visitors_est_low <= visitors_est AND visitors_est <= visitors_est_high "
            "AND visits_est_low <= visits_est AND visits_est <= visits_est_high)",
        ),
    ],
)

zone_hourly = sql_asset(
    "marts",
    "zone_hourly",
    "Distinct people present in each zone at some moment of each local hour, extrapolated, for "
    "crowd management; groups under k devices suppressed.",
    deps=[
        dg.AssetDep(ZONE_VISITS, partition_mapping=PREVIOUS_AND_SAME_DAY),
        dg.AssetDep(DEVICE_WEIGHTS, partition_mapping=PREVIOUS_AND_SAME_DAY),
    ],
    checks=[no_small_groups("marts.zone_hourly", "present")],
)

origin_country_daily = sql_asset(
    "marts",
    "origin_country_daily",
    "Visits and visitors per zone, day and origin country (home network of the SIM), "
    "extrapolated; groups under k devices suppressed.",
    deps=[ZONE_VISITS, DEVICE_WEIGHTS],
    checks=[no_small_groups("marts.origin_country_daily", "visitors")],
)

home_municipality_daily = sql_asset(
    "marts",
    "home_municipality_daily",
    "Visits and visitors per zone, day and home municipality (Swedish SIMs with a known home), "
    "extrapolated; groups under k devices suppressed.",
    deps=[ZONE_VISITS, DEVICE_WEIGHTS],
    checks=[no_small_groups("marts.home_municipality_daily", "visitors")],
)

marts_assets = [zone_daily, zone_hourly, origin_country_daily, home_municipality_daily]
