"""marts.event_kpis on hand-made warehouses whose answers are known: each person and day is written by hand
into core.zone_visits and core.device_weights, and the KPI step's SQL runs on them as in the pipeline.

Every device has the same share (0.5: weight 2) unless a test says otherwise, so estimates are twice the
device counts; expected figures are derived from the visits each test writes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from crowd_platform.methodology import Methodology
from crowd_platform.warehouse import TableWrite, load_sql, write_tables
from crowd_platform_tests.conftest import BuiltWorld, write_visitor_days, write_zone_attribution

START, END = dt.date(2022, 6, 15), dt.date(2022, 6, 21)  # a Wednesday to a Tuesday: each weekday once
BASELINE = [dt.date(2022, 6, 1) + dt.timedelta(days=i) for i in range(14)]  # two of each weekday before
EVENT_DAYS = [START + dt.timedelta(days=i) for i in range(7)]
SHARE = 0.5
K = Methodology().min_group_devices
Z = Methodology().confidence_z
# The interval formulas below are the sampling ones: without the zone attribution error (tested apart).
SAMPLING_ONLY = Methodology(attribution_log_sd_area=0.0, attribution_log_sd_venue=0.0, attribution_log_sd_mean=0.0)


@dataclass(frozen=True)
class Visit:
    day: dt.date
    device: str
    zone: str
    visitor_class: str = "domestic_visitor"
    origin_country: str = "SE"


def visits_of(devices: Iterable[str], days: Iterable[dt.date], zone: str, **attributes: Any) -> list[Visit]:
    return [Visit(day, device, zone, **attributes) for device in devices for day in days]


def people(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(count)]


def compute_kpis(
    folder: Path,
    visits: list[Visit],
    *,
    main_zones: tuple[str, ...] = ("area_a", "area_b"),
    venues: dict[str, str] | None = None,
    held_days: Iterable[dt.date] = EVENT_DAYS,
    share_rel_var: float = 0.0,
    zone_daily_k: int = K,
    withheld_cells: Iterable[tuple[dt.date, str]] = (),
    methodology: Methodology | None = None,
    inseparable: Iterable[str] = (),
) -> pl.DataFrame:
    """Write the warehouse tables the KPI step reads, run the step, return marts.event_kpis.

    marts.zone_daily withholds a zone-day under `zone_daily_k` devices (its primary rule) and the
    `withheld_cells` (standing in for another rule of that mart).
    """
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    for schema in ("reference", "core", "marts"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(
        "CREATE TABLE reference.events AS SELECT 'expo' AS event_id, 'Expo' AS name, $start AS start_date, "
        "$end AS end_date, unnest($zones) AS main_zone_id, '1283' AS host_municipality",
        {"start": START, "end": END, "zones": list(main_zones)},
    )
    zones = [(zone, "area", None) for zone in main_zones] + [(v, "venue", p) for v, p in (venues or {}).items()]
    con.execute("CREATE TABLE reference.zones (zone_id VARCHAR, name VARCHAR, kind VARCHAR, parent_zone_id VARCHAR)")
    con.executemany("INSERT INTO reference.zones VALUES (?, upper(?), ?, ?)", [(z, z, k, p) for z, k, p in zones])
    params = (methodology or SAMPLING_ONLY).sql_params()
    write_zone_attribution(con, methodology or SAMPLING_ONLY, inseparable)
    con.execute(
        "CREATE TABLE core.zone_visits (event_date DATE, device_key VARCHAR, zone_id VARCHAR, dwell_s DOUBLE, "
        "is_visit BOOLEAN, visitor_class VARCHAR, origin_country VARCHAR, home_municipality VARCHAR)"
    )
    con.executemany(
        "INSERT INTO core.zone_visits VALUES (?, ?, ?, 3600, true, ?, ?, NULL)",
        [(v.day, v.device, v.zone, v.visitor_class, v.origin_country) for v in visits],
    )
    write_visitor_days(con)
    # A device seen on every held day (a phone at home): the warehouse holds those days.
    weights = {(v.day, v.device) for v in visits} | {(day, "homebody") for day in held_days}
    con.execute(
        "CREATE TABLE core.device_weights (event_date DATE, device_key VARCHAR, share_basis VARCHAR, "
        "share_group VARCHAR, share DOUBLE, share_rel_var DOUBLE)"
    )
    con.executemany(
        "INSERT INTO core.device_weights VALUES (?, ?, 'municipality', '1280', ?, ?)",
        [(day, device, SHARE, share_rel_var) for day, device in sorted(weights)],
    )
    con.execute(
        """
        CREATE TABLE marts.zone_daily AS
        WITH cells AS (
            SELECT event_date, zone_id, count(DISTINCT device_key) AS devices,
                   list_contains(CAST($withheld AS VARCHAR[]), strftime(event_date, '%Y-%m-%d') || ' ' || zone_id)
                       AS withheld_by_another_rule
            FROM core.zone_visits GROUP BY event_date, zone_id
        )
        SELECT event_date, zone_id, devices, devices < $k OR withheld_by_another_rule AS suppressed,
               CASE WHEN devices < $k THEN 'primary_k' WHEN withheld_by_another_rule THEN 'secondary_test' END
                   AS suppression_rule
        FROM cells
        """,
        {"k": zone_daily_k, "withheld": [f"{day} {zone}" for day, zone in withheld_cells]},
    )
    write_tables(con, [TableWrite("marts.event_kpis", load_sql("marts/event_kpis"), params)], None)
    frame = con.execute("FROM marts.event_kpis").pl()
    con.close()
    return frame


def kpi(frame: pl.DataFrame, metric: str, zone: str | None = None, other: str | None = None,
        category: str | None = None) -> dict[str, Any]:  # fmt: skip
    rows = [
        row
        for row in frame.iter_rows(named=True)
        if row["metric"] == metric
        and row["zone_id"] == zone
        and row["other_zone_id"] == other
        and row["category"] == category
    ]
    assert len(rows) == 1, (metric, zone, other, category, rows)
    return rows[0]


def assert_withheld(row: dict[str, Any], rule: str) -> None:
    assert row["suppressed"] and row["suppression_rule"] == rule, row
    assert row["value"] is None and row["low"] is None and row["high"] is None


def assert_published(row: dict[str, Any]) -> None:
    assert not row["suppressed"] and row["suppression_rule"] is None and row["value"] is not None, row


# --- counting people ------------------------------------------------------------------------------------


def test_a_person_in_two_zones_counts_once_in_unique_visitors_and_once_in_the_overlap(tmp_path: Path) -> None:
    only_a, only_b, both = people("a", 12), people("b", 15), people("ab", 11)
    visits = (
        visits_of(only_a, EVENT_DAYS[:1], "area_a")
        + visits_of(only_b, EVENT_DAYS[1:2], "area_b")
        + visits_of(both, EVENT_DAYS[:1], "area_a")  # both zones on the same day ...
        + visits_of(both, EVENT_DAYS[:1], "area_b")
        + visits_of(both, EVENT_DAYS[3:4], "area_b")  # ... and B again on another day
    )
    frame = compute_kpis(tmp_path, visits)
    weight = 1 / SHARE
    assert kpi(frame, "unique_visitors")["value"] == weight * (len(only_a) + len(only_b) + len(both))
    assert kpi(frame, "unique_visitors", "area_a")["value"] == weight * (len(only_a) + len(both))
    assert kpi(frame, "unique_visitors", "area_b")["value"] == weight * (len(only_b) + len(both))
    overlap = kpi(frame, "zone_overlap", "area_a", "area_b")
    assert overlap["value"] == weight * len(both)
    assert frame.filter(pl.col("metric") == "zone_overlap").height == 1  # each pair once
    # Visits count each person once per zone and day: the overlap people three times.
    assert kpi(frame, "visits")["value"] == weight * (len(only_a) + len(only_b) + 3 * len(both))
    assert kpi(frame, "visits", "area_b")["value"] == weight * (len(only_b) + 2 * len(both))
    # The union identity holds exactly: unique = u(A) + u(B) - overlap.
    union = (
        kpi(frame, "unique_visitors", "area_a")["value"]
        + kpi(frame, "unique_visitors", "area_b")["value"]
        - overlap["value"]
    )
    assert union == kpi(frame, "unique_visitors")["value"]


def test_unique_visitors_interval_is_the_binomial_one_and_visits_count_repeat_visits_together(tmp_path: Path) -> None:
    """A person is a subscriber or not once for all their days: two visits weigh as (2/p)^2 (1 - p), not
    2 (1 - p) / p^2 (as if they were two independent people)."""
    twice = people("t", 20)
    frame = compute_kpis(tmp_path, visits_of(twice, EVENT_DAYS[:2], "area_a"))
    unique = kpi(frame, "unique_visitors")
    se_unique = math.sqrt(len(twice) * (1 - SHARE) / SHARE**2)
    assert unique["high"] == round(unique["value"] + Z * se_unique)
    visits = kpi(frame, "visits")
    se_visits = math.sqrt(len(twice) * (2 / SHARE) ** 2 * (1 - SHARE))
    assert visits["value"] == 2 * len(twice) / SHARE
    assert visits["high"] == round(visits["value"] + Z * se_visits)
    assert visits["low"] == max(round(visits["value"] - Z * se_visits), len(twice))  # never below the devices seen


def test_attribution_error_widens_counts_and_means_by_their_factors_and_leaves_the_share_alone(
    tmp_path: Path,
) -> None:
    """With a log-scale attribution error sd, a count's interval becomes [low / e^(z sd), high * e^(z sd)],
    with the venue's sd wherever a venue is involved; the means over persons widen by their own sd, never
    below 1; the share is a ratio in which a common error cancels."""
    locals_, tourists, at_venue = people("l", 20), people("t", 12), people("v", 15)
    visits = visits_of(locals_, EVENT_DAYS[:1], "area_a") + visits_of(
        tourists, EVENT_DAYS[:1], "area_a", visitor_class="international_visitor", origin_country="DK"
    )
    visits += visits_of(at_venue, EVENT_DAYS[:1], "venue_v")
    venues = {"venue_v": "area_a"}
    plain = compute_kpis(tmp_path, visits, venues=venues)
    area_sd, venue_sd, mean_sd = 0.2, 0.5, 0.3
    methodology = Methodology(
        attribution_log_sd_area=area_sd, attribution_log_sd_venue=venue_sd, attribution_log_sd_mean=mean_sd
    )
    widened = compute_kpis(tmp_path / "widened", visits, venues=venues, methodology=methodology)

    n = len(locals_) + len(tourists)
    unique, unique_plain = kpi(widened, "unique_visitors"), kpi(plain, "unique_visitors")
    se = math.sqrt(n * (1 - SHARE) / SHARE**2)
    assert unique["value"] == unique_plain["value"] == n / SHARE
    assert unique["high"] == round((unique["value"] + Z * se) * math.exp(Z * area_sd))
    assert unique["low"] == round(max(unique["value"] - Z * se, n) / math.exp(Z * area_sd))

    venue, m = kpi(widened, "unique_visitors", "venue_v"), len(at_venue)
    se_venue = math.sqrt(m * (1 - SHARE) / SHARE**2)
    assert venue["high"] == round((venue["value"] + Z * se_venue) * math.exp(Z * venue_sd))
    assert venue["low"] == round(max(venue["value"] - Z * se_venue, m) / math.exp(Z * venue_sd))

    share, share_plain = kpi(widened, "international_share"), kpi(plain, "international_share")
    assert [share[c] for c in ("low", "value", "high")] == [share_plain[c] for c in ("low", "value", "high")]

    factor = math.exp(Z * mean_sd)
    for metric in ("days_attended_mean", "visits_per_visitor"):
        mean, mean_plain = kpi(widened, metric), kpi(plain, metric)
        assert mean["value"] == mean_plain["value"] == 1.0  # everybody came once: the floor binds
        assert mean["high"] == pytest.approx(mean_plain["high"] * factor, abs=0.011)
        assert mean["low"] == max(round(mean_plain["low"] / factor, 2), 1.0) == 1.0


def test_an_overlap_compounds_the_attribution_errors_of_its_two_zones(tmp_path: Path) -> None:
    """A person in an overlap must be found in both zones: the overlap's factor is e^(z sqrt(sd_a^2 + sd_b^2)),
    larger than either zone's own (up to the rounding of the bounds)."""
    both, area_only = people("b", 15), people("a", 20)
    visits = visits_of(both + area_only, EVENT_DAYS[:2], "area_a") + visits_of(both, EVENT_DAYS[:2], "venue_v")
    venues = {"venue_v": "area_a"}
    plain = compute_kpis(tmp_path, visits, venues=venues)
    area_sd, venue_sd = 0.2, 0.5
    widened = compute_kpis(tmp_path / "widened", visits, venues=venues, methodology=Methodology(
        attribution_log_sd_area=area_sd, attribution_log_sd_venue=venue_sd))  # fmt: skip
    for (zone, other), sd in {("area_a", "venue_v"): math.hypot(area_sd, venue_sd), ("venue_v", None): venue_sd,
                              (None, None): area_sd}.items():  # fmt: skip
        metric = "zone_overlap" if other else "unique_visitors"
        row, row_plain = kpi(widened, metric, zone, other), kpi(plain, metric, zone, other)
        assert row["value"] == row_plain["value"]
        assert row["high"] == pytest.approx(row_plain["high"] * math.exp(Z * sd), abs=2), (zone, other)
        assert row["low"] == pytest.approx(row_plain["low"] / math.exp(Z * sd), abs=2), (zone, other)


def test_the_means_widen_by_their_own_attribution_error(tmp_path: Path) -> None:
    """Days attended and visits per visitor over people who came on 1 and on 4 days: both bounds move by
    the factor e^(z sd) of attribution_log_sd_mean (up to the rounding to 2 decimals), the estimate stays."""
    visits = visits_of(people("once", 10), EVENT_DAYS[:1], "area_a") + visits_of(
        people("four", 12), EVENT_DAYS[:4], "area_a"
    )
    plain = compute_kpis(tmp_path, visits)
    sd = 0.3
    widened = compute_kpis(tmp_path / "widened", visits, methodology=Methodology(attribution_log_sd_mean=sd,
                           attribution_log_sd_area=0.0, attribution_log_sd_venue=0.0))  # fmt: skip
    factor = math.exp(Z * sd)
    for metric in ("days_attended_mean", "visits_per_visitor"):
        mean, mean_plain = kpi(widened, metric), kpi(plain, metric)
        assert mean["value"] == mean_plain["value"] == pytest.approx((10 + 4 * 12) / 22, abs=0.005)
        assert mean["low"] == pytest.approx(mean_plain["low"] / factor, abs=0.011)
        assert mean["high"] == pytest.approx(mean_plain["high"] * factor, abs=0.011)
        assert 1 < mean["low"] < mean_plain["low"]


def test_counts_of_an_inseparable_zone_have_intervals_from_zero(tmp_path: Path) -> None:
    """A venue counted only through a small cell that covers mostly its surroundings: every device seen there
    may have been outside it, so each count involving it (visits, unique visitors, overlaps) has low = 0 and
    its high as before; the event-wide figures over the separable main zones keep their low ends."""
    at_area, at_both = people("a", 20), people("b", 12)
    visits = visits_of(at_area + at_both, EVENT_DAYS[:2], "area_a") + visits_of(at_both, EVENT_DAYS[:2], "venue_v")
    venues = {"venue_v": "area_a"}
    methodology = Methodology(attribution_log_sd_area=0.2, attribution_log_sd_venue=0.5)
    separable = compute_kpis(tmp_path, visits, venues=venues, methodology=methodology)
    inseparable = compute_kpis(tmp_path / "inseparable", visits, venues=venues, methodology=methodology,
                               inseparable=["venue_v"])  # fmt: skip
    for metric, zone, other in [("visits", "venue_v", None), ("unique_visitors", "venue_v", None),
                                ("zone_overlap", "area_a", "venue_v")]:  # fmt: skip
        before, after = kpi(separable, metric, zone, other), kpi(inseparable, metric, zone, other)
        assert before["low"] > 0, (metric, zone)
        assert (after["low"], after["value"], after["high"]) == (0, before["value"], before["high"]), (metric, zone)
    for metric, zone in [("visits", None), ("unique_visitors", None), ("visits", "area_a"),
                         ("days_attended_mean", None)]:  # fmt: skip
        before, after = kpi(separable, metric, zone), kpi(inseparable, metric, zone)
        assert (after["low"], after["value"], after["high"]) == (before["low"], before["value"], before["high"])
        assert after["low"] > 0, (metric, zone)


def test_attribution_error_widens_the_uplift_by_the_event_visits(tmp_path: Path) -> None:
    regulars, expo_goers = people("r", 14), people("x", 25)
    world = baseline_world(regulars, expo_goers, [10] * 14)
    plain = kpi(compute_kpis(tmp_path, world, held_days=BASELINE + EVENT_DAYS), "uplift", "area_a")
    sd = 0.1
    frame = compute_kpis(tmp_path / "widened", world, held_days=BASELINE + EVENT_DAYS,
                         methodology=Methodology(attribution_log_sd_area=sd))  # fmt: skip
    uplift, visits = kpi(frame, "uplift", "area_a"), kpi(frame, "visits", "area_a")
    assert uplift["value"] == plain["value"]
    se_plain = (plain["high"] - plain["low"]) / (2 * Z)
    half_width = Z * math.sqrt(se_plain**2 + (sd * visits["value"]) ** 2)
    assert uplift["high"] - uplift["value"] == pytest.approx(half_width, abs=1)


def test_share_error_is_common_to_a_share_group(tmp_path: Path) -> None:
    """With a share relative variance r, N people of one group add (N / p)^2 r to the variance."""
    visitors, rel_var = people("v", 30), 0.01
    frame = compute_kpis(tmp_path, visits_of(visitors, EVENT_DAYS[:1], "area_a"), share_rel_var=rel_var)
    n = len(visitors)
    se = math.sqrt(n * (1 - SHARE) / SHARE**2 + (n / SHARE) ** 2 * rel_var)
    unique = kpi(frame, "unique_visitors")
    assert unique["high"] == round(unique["value"] + Z * se)


def test_days_attended_and_visits_per_visitor(tmp_path: Path) -> None:
    attendance = {1: people("one", 10), 2: people("two", 11), 4: people("four", 12), 7: people("seven", 13)}
    visits = [v for days, group in attendance.items() for v in visits_of(group, EVENT_DAYS[:days], "area_a")]
    visits += visits_of(attendance[7], EVENT_DAYS[:1], "area_b")  # one extra zone-day each, not an extra day
    frame = compute_kpis(tmp_path, visits)
    for days, category in [(1, "1"), (2, "2"), (4, "3-5"), (7, "6+")]:
        assert kpi(frame, "days_attended", category=category)["value"] == len(attendance[days]) / SHARE
    persons = sum(len(g) for g in attendance.values())
    person_days = sum(days * len(g) for days, g in attendance.items())
    mean = kpi(frame, "days_attended_mean")
    assert mean["value"] == pytest.approx(person_days / persons, abs=0.005)
    assert mean["low"] < mean["value"] < mean["high"]
    per_visitor = kpi(frame, "visits_per_visitor")
    assert per_visitor["value"] == pytest.approx((person_days + len(attendance[7])) / persons, abs=0.005)
    # With one share for everybody, the mean over persons is also visits / unique visitors.
    assert per_visitor["value"] == pytest.approx(kpi(frame, "visits")["value"] / kpi(frame, "unique_visitors")["value"],
                                                 abs=0.005)  # fmt: skip
    # The categories add up to the unique visitors.
    buckets = frame.filter(pl.col("metric") == "days_attended")["value"].sum()
    assert buckets == kpi(frame, "unique_visitors")["value"]


def test_international_share_has_an_interval(tmp_path: Path) -> None:
    danes, swedes = people("dk", 12), people("se", 36)
    visits = visits_of(danes, EVENT_DAYS[:1], "area_a", visitor_class="international_visitor", origin_country="DK")
    visits += visits_of(swedes, EVENT_DAYS[:1], "area_a")
    share = kpi(compute_kpis(tmp_path, visits), "international_share")
    assert share["value"] == pytest.approx(len(danes) / (len(danes) + len(swedes)))
    assert 0 <= share["low"] < share["value"] < share["high"] < 1


# --- the baseline weeks -------------------------------------------------------------------------------


def baseline_world(regulars: list[str], expo_goers: list[str], baseline_sizes: list[int]) -> list[Visit]:
    """Regulars come to area A on every baseline and event day (the first `baseline_sizes[i]` of them on
    baseline day i); the expo goers only on the event days."""
    visits = [Visit(day, device, "area_a") for day, size in zip(BASELINE, baseline_sizes, strict=True)
              for device in regulars[:size]]  # fmt: skip
    visits += visits_of(regulars + expo_goers, EVENT_DAYS, "area_a")
    visits += visits_of(people("b", 10), EVENT_DAYS, "area_b")  # B: no baseline at all
    return visits


def expected_uplift(baseline_sizes: list[int], event_sizes: list[int]) -> float:
    means: dict[int, list[int]] = {}
    for day, size in zip(BASELINE, baseline_sizes, strict=True):
        means.setdefault(day.weekday(), []).append(size)
    normal = sum(sum(means[day.weekday()]) / len(means[day.weekday()]) for day in EVENT_DAYS)
    return (sum(event_sizes) - normal) / SHARE


def test_first_time_and_returning_visitors(tmp_path: Path) -> None:
    regulars, expo_goers = people("r", 14), people("x", 25)
    frame = compute_kpis(tmp_path, baseline_world(regulars, expo_goers, [14] * 14), held_days=BASELINE + EVENT_DAYS)
    assert kpi(frame, "returning_visitors")["value"] == len(regulars) / SHARE
    first_time = kpi(frame, "first_time_visitors")
    assert first_time["value"] == (len(expo_goers) + 10) / SHARE  # area B's people were never seen before
    assert first_time["low"] < first_time["value"] < first_time["high"]
    assert (kpi(frame, "returning_visitors")["value"] + first_time["value"]) == kpi(frame, "unique_visitors")["value"]


def test_no_first_time_split_or_uplift_without_baseline_weeks(tmp_path: Path) -> None:
    frame = compute_kpis(tmp_path, visits_of(people("x", 20), EVENT_DAYS, "area_a"))
    assert not {"uplift", "first_time_visitors", "returning_visitors"} & set(frame["metric"])


def test_uplift_over_the_same_weekdays_of_the_baseline_weeks(tmp_path: Path) -> None:
    regulars, expo_goers = people("r", 14), people("x", 25)
    steady = [10] * 14
    frame = compute_kpis(tmp_path, baseline_world(regulars, expo_goers, steady), held_days=BASELINE + EVENT_DAYS)
    event_sizes = [len(regulars) + len(expo_goers)] * 7
    uplift_a = kpi(frame, "uplift", "area_a")
    assert uplift_a["value"] == round(expected_uplift(steady, event_sizes))
    assert uplift_a["low"] < uplift_a["value"] < uplift_a["high"]
    # Area B had nobody in the baseline weeks: all its visits are uplift; the total adds the zones.
    assert kpi(frame, "uplift", "area_b")["value"] == kpi(frame, "visits", "area_b")["value"]
    assert kpi(frame, "uplift")["value"] == uplift_a["value"] + kpi(frame, "uplift", "area_b")["value"]

    # A baseline that varies from week to week (same mean per weekday pair) leaves the value as it is
    # and widens the interval: the normal level of each event day is less certain.
    varying = [6] * 7 + [14] * 7
    other = compute_kpis(
        tmp_path / "varying",
        baseline_world(regulars, expo_goers, varying),
        held_days=BASELINE + EVENT_DAYS,
        zone_daily_k=1,  # the small baseline days stay published in marts.zone_daily here
    )
    varied = kpi(other, "uplift", "area_a")
    assert varied["value"] == uplift_a["value"]
    assert varied["high"] - varied["low"] > uplift_a["high"] - uplift_a["low"]


def test_uplift_follows_weekdays(tmp_path: Path) -> None:
    """Busy weekends in the baseline: an event weekend as busy as a normal one brings nothing."""
    regulars = people("r", 30)
    sizes = [30 if day.weekday() >= 5 else 12 for day in BASELINE]
    visits = [Visit(day, device, "area_a") for day, size in zip(BASELINE, sizes, strict=True)
              for device in regulars[:size]]  # fmt: skip
    event_sizes = [30 if day.weekday() >= 5 else 20 for day in EVENT_DAYS]
    visits += [Visit(day, device, "area_a") for day, size in zip(EVENT_DAYS, event_sizes, strict=True)
               for device in regulars[:size]]  # fmt: skip
    frame = compute_kpis(tmp_path, visits, main_zones=("area_a",), held_days=BASELINE + EVENT_DAYS)
    assert kpi(frame, "uplift", "area_a")["value"] == round(expected_uplift(sizes, event_sizes)) == 5 * 8 / SHARE


# --- disclosure control ---------------------------------------------------------------------------------


def test_a_kpi_under_k_devices_is_withheld(tmp_path: Path) -> None:
    visits = visits_of(people("a", 30), EVENT_DAYS[:2], "area_a") + visits_of(people("v", K - 1), EVENT_DAYS[:1],
                                                                                "venue_v")  # fmt: skip
    frame = compute_kpis(tmp_path, visits, venues={"venue_v": "area_a"})
    assert_withheld(kpi(frame, "visits", "venue_v"), "primary_k")
    assert_withheld(kpi(frame, "unique_visitors", "venue_v"), "primary_k")
    assert_published(kpi(frame, "visits", "area_a"))
    # Nobody went to area B: no row, not a zero.
    assert frame.filter(pl.col("zone_id") == "area_b").height == 0


def test_total_minus_other_zones_is_protected(tmp_path: Path) -> None:
    """Zone C's visits are under k; with the total and A published, B (the smallest other) goes too."""
    visits = (
        visits_of(people("a", 30), EVENT_DAYS[:1], "area_a")
        + visits_of(people("b", 20), EVENT_DAYS[:1], "area_b")
        + visits_of(people("c", 4), EVENT_DAYS[:1], "area_c")
    )
    # marts.zone_daily built with a lower threshold (4): its cells do not protect C here, the relation must.
    frame = compute_kpis(tmp_path, visits, main_zones=("area_a", "area_b", "area_c"), zone_daily_k=4)
    assert_withheld(kpi(frame, "visits", "area_c"), "primary_k")
    assert_withheld(kpi(frame, "visits", "area_b"), "secondary_total_minus_zones")
    assert_published(kpi(frame, "visits", "area_a"))
    total = kpi(frame, "visits")
    assert_published(total)
    assert total["value"] - kpi(frame, "visits", "area_a")["value"] == (20 + 4) / SHARE  # B and C only together


def test_the_total_goes_too_when_no_other_part_can_protect(tmp_path: Path) -> None:
    """B (4 devices) withheld; withholding A (12) too would leave 16 - k < k: the total is withheld."""
    visits = visits_of(people("a", 12), EVENT_DAYS[:1], "area_a") + visits_of(people("b", 4), EVENT_DAYS[:1],
                                                                                "area_b")  # fmt: skip
    frame = compute_kpis(tmp_path, visits, zone_daily_k=1)
    assert_withheld(kpi(frame, "visits", "area_b"), "primary_k")
    assert_withheld(kpi(frame, "visits", "area_a"), "secondary_total_minus_zones")
    assert_withheld(kpi(frame, "visits"), "secondary_total_minus_zones")


def test_a_day_withheld_under_k_is_left_out_of_the_zone_totals(tmp_path: Path) -> None:
    """marts.zone_daily withholds a small day of area A: the totals leave it out, so A's event total
    minus its published days gives nothing back."""
    visits = visits_of(people("a", 30), EVENT_DAYS[:3], "area_a") + visits_of(people("b", 30), EVENT_DAYS[:3],
                                                                                "area_b")  # fmt: skip
    visits += visits_of(people("late", 3), EVENT_DAYS[4:5], "area_a")  # a small day: withheld by the mart
    frame = compute_kpis(tmp_path, visits)
    area_a, total = kpi(frame, "visits", "area_a"), kpi(frame, "visits")
    assert_published(area_a)
    assert_published(total)
    assert area_a["value"] == pytest.approx(30 * 3 / SHARE)  # the published days only
    assert total["value"] == pytest.approx(60 * 3 / SHARE)
    # Unique visitors are not sums of zone_daily cells: the three late visitors count there.
    assert kpi(frame, "unique_visitors", "area_a")["value"] == pytest.approx(33 / SHARE)


def test_a_day_withheld_by_another_rule_is_left_out_of_the_zone_totals_too(tmp_path: Path) -> None:
    """A day of area A withheld by another rule of marts.zone_daily (to protect some other cell): in
    A's total it would be the total less A's published days, so the totals leave it out as well."""
    visits = visits_of(people("a", 30), EVENT_DAYS[:3], "area_a") + visits_of(people("b", 30), EVENT_DAYS[:3],
                                                                                "area_b")  # fmt: skip
    frame = compute_kpis(tmp_path, visits, withheld_cells=[(EVENT_DAYS[2], "area_a")])
    assert kpi(frame, "visits", "area_a")["value"] == pytest.approx(30 * 2 / SHARE)
    assert kpi(frame, "visits")["value"] == pytest.approx((30 * 2 + 30 * 3) / SHARE)
    assert kpi(frame, "unique_visitors", "area_a")["value"] == pytest.approx(30 / SHARE)


def test_days_attended_categories_are_protected_against_the_total(tmp_path: Path) -> None:
    attendance = {1: people("one", 30), 2: people("two", 20), 4: people("four", 12), 7: people("seven", 3)}
    visits = [v for days, group in attendance.items() for v in visits_of(group, EVENT_DAYS[:days], "area_a")]
    frame = compute_kpis(tmp_path, visits, zone_daily_k=1)
    assert_withheld(kpi(frame, "days_attended", category="6+"), "primary_k")
    # 3 + 12 devices withheld: crediting the secondary part with k leaves 5 < k, so the next one goes too.
    assert_withheld(kpi(frame, "days_attended", category="3-5"), "secondary_total_minus_buckets")
    assert_withheld(kpi(frame, "days_attended", category="2"), "secondary_total_minus_buckets")
    assert_published(kpi(frame, "days_attended", category="1"))
    assert_published(kpi(frame, "unique_visitors"))


def test_returning_visitors_under_k_take_first_time_visitors_with_them(tmp_path: Path) -> None:
    regulars, expo_goers = people("r", 4), people("x", 30)
    frame = compute_kpis(tmp_path, baseline_world(regulars, expo_goers, [4] * 14), held_days=BASELINE + EVENT_DAYS,
                         zone_daily_k=1)  # fmt: skip
    assert_withheld(kpi(frame, "returning_visitors"), "primary_k")
    assert_withheld(kpi(frame, "first_time_visitors"), "secondary_total_minus_other_group")
    assert_published(kpi(frame, "unique_visitors"))


def test_a_small_overlap_of_two_main_zones_is_protected_against_the_union(tmp_path: Path) -> None:
    visits = (
        visits_of(people("a", 30), EVENT_DAYS[:1], "area_a")
        + visits_of(people("b", 20), EVENT_DAYS[:1], "area_b")
        + visits_of(people("ab", 3), EVENT_DAYS[:1], "area_a")
        + visits_of(people("ab", 3), EVENT_DAYS[:1], "area_b")
    )
    frame = compute_kpis(tmp_path, visits, zone_daily_k=1)
    assert_withheld(kpi(frame, "zone_overlap", "area_a", "area_b"), "primary_k")
    # u(A) + u(B) - unique_visitors would give the overlap: the smaller zone is withheld too.
    assert_withheld(kpi(frame, "unique_visitors", "area_b"), "secondary_union_minus_zones")
    assert_published(kpi(frame, "unique_visitors", "area_a"))
    assert_published(kpi(frame, "unique_visitors"))


def test_an_uplift_is_withheld_with_its_zones_visits(tmp_path: Path) -> None:
    """Area C's visits are under k: its uplift (visits less a published baseline) goes with them, and
    so does every uplift whose zone's visits are withheld to protect C."""
    regulars, expo_goers = people("r", 14), people("x", 25)
    visits = baseline_world(regulars, expo_goers, [14] * 14)
    visits += visits_of(people("small", K - 1), EVENT_DAYS[:1], "area_c")
    frame = compute_kpis(
        tmp_path, visits, main_zones=("area_a", "area_b", "area_c"), zone_daily_k=1, held_days=BASELINE + EVENT_DAYS
    )
    assert_withheld(kpi(frame, "visits", "area_c"), "primary_k")
    assert_withheld(kpi(frame, "uplift", "area_c"), "primary_k")
    for zone in ("area_a", "area_b"):
        if kpi(frame, "visits", zone)["suppressed"]:
            assert kpi(frame, "uplift", zone)["suppressed"]
    assert_published(kpi(frame, "uplift"))


def test_withheld_days_of_k_devices_together_stay_in_the_zone_totals(tmp_path: Path) -> None:
    """Two small days of area A (5 and 6 devices) are withheld by the mart; together they hold k or more
    devices, so A's total keeps them (the total less the published days gives only their sum)."""
    visits = visits_of(people("a", 30), EVENT_DAYS[:3], "area_a") + visits_of(people("b", 30), EVENT_DAYS[:3],
                                                                                "area_b")  # fmt: skip
    visits += visits_of(people("early", 5), EVENT_DAYS[4:5], "area_a")
    visits += visits_of(people("late", 6), EVENT_DAYS[5:6], "area_a")
    frame = compute_kpis(tmp_path, visits)
    assert kpi(frame, "visits", "area_a")["value"] == pytest.approx((30 * 3 + 5 + 6) / SHARE)
    assert kpi(frame, "visits")["value"] == pytest.approx((60 * 3 + 5 + 6) / SHARE)


def test_a_withheld_baseline_day_is_left_out_of_the_uplift(tmp_path: Path) -> None:
    regulars, expo_goers = people("r", 14), people("x", 25)
    visits = baseline_world(regulars, expo_goers, [14] * 14)
    complete = kpi(compute_kpis(tmp_path / "complete", visits, held_days=BASELINE + EVENT_DAYS), "uplift", "area_a")
    withheld = [(BASELINE[0], "area_a")]  # marts.zone_daily withholds a baseline day of A
    frame = compute_kpis(tmp_path / "withheld", visits, held_days=BASELINE + EVENT_DAYS, withheld_cells=withheld)
    assert_published(kpi(frame, "uplift", "area_a"))
    assert kpi(frame, "uplift", "area_a")["value"] != complete["value"]  # the day's visits are not in the baseline


def test_every_row_is_published_or_withheld_with_a_rule(tmp_path: Path) -> None:
    regulars, expo_goers = people("r", 14), people("x", 25)
    frame = compute_kpis(tmp_path, baseline_world(regulars, expo_goers, [14] * 14), held_days=BASELINE + EVENT_DAYS)
    published = frame.filter(~pl.col("suppressed"))
    assert published["suppression_rule"].null_count() == published.height
    assert published.filter(pl.col("value").is_null()).height == 0
    with_interval = published.filter(pl.col("low").is_not_null())
    assert (with_interval["low"] <= with_interval["value"]).all() and (
        with_interval["value"] <= with_interval["high"]
    ).all()


# --- in the pipeline ------------------------------------------------------------------------------------


def test_the_pipeline_builds_marts_event_kpis(world: BuiltWorld) -> None:
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        frame = con.execute("FROM marts.event_kpis").pl()
        devices = con.execute(
            "SELECT count(DISTINCT device_key) FROM core.zone_visits WHERE is_visit AND zone_id IN ('area_a', 'area_b')"
        ).fetchone()[0]
        old = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'event' AND table_name = 'event_kpis'"
        ).fetchone()[0]
    assert old == 0
    assert {"suppression_rule", "other_zone_id", "category"} <= set(frame.columns)
    unique = kpi(frame, "unique_visitors")
    # At least the people seen, less what zone attribution may have got wrong.
    assert unique["low"] >= round(devices / math.exp(Z * Methodology().attribution_log_sd_area))
    overlaps = frame.filter(pl.col("metric") == "zone_overlap")
    assert overlaps.height > 0 and (overlaps["zone_id"] < overlaps["other_zone_id"]).all()
    assert {"1", "2", "3-5", "6+"} >= set(frame.filter(pl.col("metric") == "days_attended")["category"])
    # The world's event covers every day it holds: no baseline weeks, so no uplift.
    assert "uplift" not in set(frame["metric"])
