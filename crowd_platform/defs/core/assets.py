"""Core: device-level facts under a pseudonym (restricted; never published)."""

from __future__ import annotations

import dagster as dg

from crowd_platform.defs.sql_asset import SqlCheck, sql_asset
from crowd_platform.methodology import Methodology
from crowd_platform.partitions import (
    NEIGHBOURING_DAYS,
    SAME_AND_NEXT_DAY,
    day_window,
    trailing_days,
    trailing_nights,
)

STAGED_EVENTS = dg.AssetKey(["staging", "events"])
SHARE_WINDOW = trailing_days(Methodology().share_window_days)
HOME_WINDOW = trailing_nights(Methodology().home_window_nights)
# A SIM seen as a machine on any day of the home window (or the day itself) is one on the day.
MACHINES_OF_HOME_WINDOW = trailing_days(Methodology().home_window_nights + 1)


def core_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["core", name])


def reference_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["reference", name])


event_flags = sql_asset(
    "core",
    "event_flags",
    "Staged events that stays leave out, each with its rule: same-second events in other cells (the "
    "smallest cell id stays) and impossible jumps (over 10 km at over 55 m/s from both neighbours).",
    deps=[dg.AssetDep(STAGED_EVENTS, partition_mapping=NEIGHBOURING_DAYS), reference_key("cells")],
)

stays = sql_asset(
    "core",
    "stays",
    "One row per stay of a device at a place: consecutive events at one cell (A-B-A ping-pong "
    "smoothed), split by gaps over the limit; boundaries at the midpoint between stays. Reads the "
    "neighbouring days so a stay across midnight is whole; a stay belongs to the day it starts.",
    deps=[
        dg.AssetDep(STAGED_EVENTS, partition_mapping=NEIGHBOURING_DAYS),
        dg.AssetDep(core_key("event_flags"), partition_mapping=NEIGHBOURING_DAYS),
    ],
    checks=[
        SqlCheck(
            "stay_bounds_ordered",
            "Every stay ends at or after its start, and its duration matches its bounds.",
            "SELECT count(*) FROM core.stays WHERE event_date BETWEEN $first_day AND $last_day "
            "AND (stay_end < stay_start OR abs(duration_s - epoch(stay_end - stay_start)) > 0.001)",
        )
    ],
)

devices = sql_asset(
    "core",
    "devices",
    "One row per device and day: home MCC/MNC, origin country (ITU E.212), handset class by TAC "
    "and whether it is a machine SIM (excluded from visitor statistics).",
    deps=[STAGED_EVENTS, reference_key("mcc_countries"), reference_key("tac_classes")],
)

device_nights = sql_asset(
    "core",
    "device_nights",
    "Where each device spent the night that begins on the day's evening (22:00-06:00 local): the "
    "municipality in whose cells it was seen in the most distinct hours of the night.",
    deps=[dg.AssetDep(STAGED_EVENTS, partition_mapping=SAME_AND_NEXT_DAY), reference_key("cells")],
)

device_homes = sql_asset(
    "core",
    "device_homes",
    "Each Swedish device's home municipality as known on the day: the majority municipality of "
    "its observed nights over the trailing 28 nights (earlier partitions only), needing at least "
    "7 nights; else unknown. Machine SIMs (seen as a machine on any day of the window) have none.",
    deps=[
        dg.AssetDep(core_key("device_nights"), partition_mapping=HOME_WINDOW),
        dg.AssetDep(core_key("devices"), partition_mapping=MACHINES_OF_HOME_WINDOW),
    ],
)

device_weights = sql_asset(
    "core",
    "device_weights",
    "Each device's extrapolation weight for the day: 1 / the operator's share of the residents of "
    "its home municipality (measured: homed devices seen in the last 28 days / population), of Sweden "
    "(unknown home) or of its country's roamers.",
    deps=[
        dg.AssetDep(core_key("device_homes"), partition_mapping=SHARE_WINDOW),
        core_key("devices"),
        reference_key("municipalities"),
        reference_key("market_shares"),
    ],
    checks=[
        SqlCheck(
            "shares_are_probabilities",
            "Every weight's share lies in (0, 1].",
            "SELECT count(*) FROM core.device_weights WHERE event_date BETWEEN $first_day AND $last_day "
            "AND NOT (share > 0 AND share <= 1)",
        )
    ],
)

zone_visits = sql_asset(
    "core",
    "zone_visits",
    "One row per visit episode of a device to a zone (stays at cells counting in the zone, merged "
    "while they touch): dwell, is_visit (>= 20 min), visitor class, origin country and home "
    "municipality. Episodes under 5 minutes and machine SIMs are left out.",
    deps=[
        dg.AssetDep(core_key("stays"), partition_mapping=NEIGHBOURING_DAYS),
        dg.AssetDep(core_key("devices"), partition_mapping=NEIGHBOURING_DAYS),
        core_key("device_homes"),
        reference_key("cell_zone_weights"),
        reference_key("zones"),
        reference_key("events"),
    ],
    checks=[
        SqlCheck(
            "visit_flags_consistent",
            "dwell_s equals the episode's length and is_visit agrees with the visit threshold.",
            "SELECT count(*) FROM core.zone_visits WHERE event_date BETWEEN $first_day AND $last_day "
            "AND (dwell_s < 0 OR abs(dwell_s - epoch(visit_end - visit_start)) > 0.001 "
            "OR is_visit <> (dwell_s >= $visit_min_s))",
        )
    ],
)

visitor_days = sql_asset(
    "core",
    "visitor_days",
    "One row per device, zone and day with a visit (a visit in Telia's sense: a person in a zone on a day): "
    "the number of visit episodes, their dwell together, visitor class, origin country and home municipality. "
    "The one definition of a visitor-day, which every daily mart, the event KPIs and the report's dwell read.",
    deps=[core_key("zone_visits")],
    checks=[
        SqlCheck(
            "one_row_per_visitor_day",
            "A device has one row per zone and day: its class, country and home are the same in all its visits.",
            "SELECT count(*) - count(DISTINCT (event_date, zone_id, device_key)) FROM core.visitor_days "
            "WHERE event_date BETWEEN $first_day AND $last_day",
        ),
        SqlCheck(
            "every_visit_in_a_visitor_day",
            "The visitor-days of each day hold exactly the day's visit episodes and their dwell.",
            "SELECT count(*) FROM (SELECT event_date, count(*) AS visits, sum(dwell_s) AS dwell_s "
            "FROM core.zone_visits WHERE event_date BETWEEN $first_day AND $last_day AND is_visit GROUP BY ALL) AS v "
            "FULL JOIN (SELECT event_date, sum(visits) AS visits, sum(dwell_s) AS dwell_s FROM core.visitor_days "
            "WHERE event_date BETWEEN $first_day AND $last_day GROUP BY ALL) AS d USING (event_date) "
            "WHERE v.visits IS DISTINCT FROM d.visits OR abs(v.dwell_s - d.dwell_s) > 0.001 "
            "OR v.dwell_s IS NULL OR d.dwell_s IS NULL",
        ),
    ],
)

# A visit of day D can last until the end of D+2 (its stays are built from D-1..D+1, and a stay of
# D+1 from D..D+2): the hourly presence of D reads visits from D-2 on.
VISITS_REACHING_THE_DAY = day_window(-2, 0)

zone_presence_hourly = sql_asset(
    "core",
    "zone_presence_hourly",
    "One row per local hour, zone and device present in the zone at some moment of that hour (any visit "
    "episode), with the device's extrapolation weight (the later visit day's when present through midnight): "
    "the one definition of hourly presence, which marts.zone_hourly sums and marts.suppression_ledger counts. "
    "Reads the visits of the two days before, which can reach into the day.",
    deps=[
        dg.AssetDep(core_key("zone_visits"), partition_mapping=VISITS_REACHING_THE_DAY),
        dg.AssetDep(core_key("device_weights"), partition_mapping=VISITS_REACHING_THE_DAY),
    ],
    checks=[
        SqlCheck(
            "visits_present_in_their_first_hour",
            "Every weighted visit episode of the day is present in its zone in the hour it starts.",
            "SELECT count(*) FROM core.zone_visits AS visits "
            "JOIN core.device_weights AS weights USING (event_date, device_key) "
            "WHERE visits.event_date BETWEEN $first_day AND $last_day AND NOT EXISTS ("
            "SELECT 1 FROM core.zone_presence_hourly AS presence WHERE presence.event_date = visits.event_date "
            "AND presence.hour = hour(visits.visit_start) AND presence.zone_id = visits.zone_id "
            "AND presence.device_key = visits.device_key)",
        )
    ],
)

core_assets = [
    event_flags,
    stays,
    devices,
    device_nights,
    device_homes,
    device_weights,
    zone_visits,
    visitor_days,
    zone_presence_hourly,
]
