"""End to end on a small landing folder: every contract table, accounting, privacy, idempotence."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import polars as pl
import pytest

from crowd_platform.methodology import Methodology
from crowd_platform.warehouse import bind, load_sql
from crowd_platform_tests.conftest import FIRST_DAY, LAST_DAY, BuiltWorld, build_zone_attribution

# DESIGN section 4: the contract columns of every output table.
CONTRACT_COLUMNS = {
    "staging.events": ["event_date", "event_time", "device_key", "home_mcc", "home_mnc", "cell_id", "event_type"],
    "staging.rejected_events": ["event_date", "source_file", "source_row", "reason"],
    "staging.load_audit": ["event_date", "source_file", "landed_rows", "staged_rows", "rejected_rows",
                           "duplicate_rows"],
    "core.stays": ["event_date", "device_key", "stay_start", "stay_end", "duration_s", "place", "n_events"],
    "core.device_homes": ["event_date", "device_key", "home_municipality", "nights_observed", "nights_at_home"],
    "core.zone_visits": ["event_date", "device_key", "zone_id", "visit_start", "visit_end", "dwell_s", "is_visit",
                         "visitor_class", "origin_country", "home_municipality"],
    "marts.zone_daily": ["event_date", "zone_id", "visits", "visitors", "visits_est", "visitors_est",
                         "visits_est_low", "visits_est_high", "visitors_est_low", "visitors_est_high",
                         "median_dwell_min", "suppressed"],
    "marts.origin_country_daily": ["event_date", "zone_id", "country_iso2", "visits", "visitors", "visits_est",
                                   "visitors_est", "suppressed"],
    "marts.home_municipality_daily": ["event_date", "zone_id", "municipality_code", "visits", "visitors",
                                      "visits_est", "visitors_est", "suppressed"],
    "marts.zone_hourly": ["event_date", "hour", "zone_id", "present_est", "suppressed"],
    "marts.event_kpis": ["event_id", "metric", "zone_id", "value", "low", "high", "suppressed"],
}  # fmt: skip
TIMESTAMPTZ_COLUMNS = {
    ("staging.events", "event_time"),
    ("core.stays", "stay_start"),
    ("core.zone_visits", "visit_start"),
}


def _read(world: BuiltWorld, query: str) -> pl.DataFrame:
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        return con.execute(query).pl()


def _landed_rows(world: BuiltWorld) -> int:
    total = 0
    for path in sorted((world.landing / "events").rglob("part-*")):
        if path.name.endswith(".parquet"):
            total += pl.read_parquet(path).height
        else:
            total += pl.read_csv(path, infer_schema=False).height
    return total


@pytest.mark.parametrize("table", sorted(CONTRACT_COLUMNS))
def test_contract_table_has_its_columns_and_rows(world: BuiltWorld, table: str) -> None:
    frame = _read(world, f"FROM {table}")
    assert set(CONTRACT_COLUMNS[table]) <= set(frame.columns)
    assert frame.height > 0, f"{table} is empty"
    if "event_date" in frame.columns and table != "marts.event_kpis":
        assert frame["event_date"].min() >= FIRST_DAY and frame["event_date"].max() <= LAST_DAY
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        types = dict(con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                                 f"WHERE table_schema || '.' || table_name = '{table}'").fetchall())  # fmt: skip
    for t, column in TIMESTAMPTZ_COLUMNS:
        if t == table:
            assert types[column] == "TIMESTAMP WITH TIME ZONE"
    if "event_date" in types:
        assert types["event_date"] == "DATE"


def test_every_landed_row_is_staged_rejected_or_a_duplicate(world: BuiltWorld) -> None:
    audit = _read(world, "SELECT sum(landed_rows) AS landed, sum(staged_rows) AS staged, sum(rejected_rows) AS "
                         "rejected, sum(duplicate_rows) AS duplicates FROM staging.load_audit"
                  ).row(0, named=True)  # fmt: skip
    # Only the day after the window's last delivery folder holds rows of other partitions.
    outside = _read(world, "SELECT count(*) AS n FROM staging.events WHERE event_date > DATE '2022-06-10'")["n"][0]
    assert outside == 0
    assert audit["landed"] == audit["staged"] + audit["rejected"] + audit["duplicates"]
    assert audit["staged"] == _read(world, "SELECT count(*) AS n FROM staging.events")["n"][0]
    assert audit["rejected"] == _read(world, "SELECT count(*) AS n FROM staging.rejected_events")["n"][0]
    # The files hold exactly the audited rows: the folder after the window holds only late
    # arrivals of the window's last day.
    assert audit["landed"] == _landed_rows(world)
    assert audit["duplicates"] == world.truth.dirt["duplicate"]


def test_each_kind_of_bad_row_is_rejected_with_its_reason_and_row(world: BuiltWorld) -> None:
    rejected = _read(world, "SELECT reason, source_file, source_row FROM staging.rejected_events")
    expected = {reason for reason in world.truth.dirt if reason != "duplicate"}
    assert set(rejected["reason"]) == expected
    assert rejected["source_file"].str.starts_with("events/date=").all()
    assert (rejected["source_row"] >= 1).all()


def test_teleports_and_same_second_duplicates_are_flagged_and_left_out_of_stays(world: BuiltWorld) -> None:
    flags = _read(world, "SELECT rule, count(*) AS n FROM core.event_flags GROUP BY rule")
    assert dict(zip(flags["rule"], flags["n"], strict=True)) == world.truth.flags
    in_stays = _read(
        world,
        "SELECT count(*) AS n FROM core.event_flags AS f JOIN core.stays AS s "
        "ON s.device_key = f.device_key AND s.place = f.cell_id AND f.event_time BETWEEN s.stay_start AND s.stay_end",
    )["n"][0]
    assert in_stays == 0


def test_late_arrivals_are_staged_in_their_own_day(world: BuiltWorld) -> None:
    late = _read(world, "SELECT event_date, source_file, staged_rows FROM staging.load_audit "
                        "WHERE source_file NOT LIKE 'events/date=' || strftime(event_date, '%Y-%m-%d') || '/%'"
                 )  # fmt: skip
    assert late.height > 0 and (late["staged_rows"] > 0).all()
    for row in late.iter_rows(named=True):
        assert row["source_file"].startswith(f"events/date={row['event_date'] + dt.timedelta(days=1)}")


def test_no_raw_imsi_in_any_table(world: BuiltWorld) -> None:
    imsis = [p.imsi for p in world.truth.persons] + ["240011111111111", "240012222222222", "240013333333333"]
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR' AND table_schema NOT IN ('information_schema', 'pg_catalog')"
        ).fetchall()
        con.execute("CREATE TEMP TABLE imsis AS SELECT unnest($imsis) AS imsi", {"imsis": imsis})
        for schema, table, column in columns:
            hits = con.execute(
                f'SELECT count(*) FROM {schema}.{table} t JOIN imsis ON contains(t."{column}", imsis.imsi)'
            ).fetchone()
            assert hits == (0,), f"raw IMSI in {schema}.{table}.{column}"
    assert len(columns) > 20


def test_published_rows_rest_on_at_least_k_devices(world: BuiltWorld) -> None:
    for table, count in [("marts.zone_daily", "visitors"), ("marts.origin_country_daily", "visitors"),
                         ("marts.home_municipality_daily", "visitors"), ("marts.zone_hourly", "present")]:  # fmt: skip
        bad = _read(world, f"SELECT count(*) AS n FROM {table} WHERE (NOT suppressed AND {count} < 10) "
                           f"OR (suppressed AND ({count} IS NOT NULL))")["n"][0]  # fmt: skip
        assert bad == 0, table
    small = _read(world, "SELECT count(*) AS n FROM marts.origin_country_daily WHERE suppressed")["n"][0]
    assert small > 0  # the test world has small country groups: suppression is exercised


def test_machine_sims_are_not_visitors(world: BuiltWorld) -> None:
    machines = _read(world, "SELECT device_key FROM core.devices WHERE is_machine")
    assert machines.height > 0
    visits = _read(world, "SELECT count(*) AS n FROM core.zone_visits JOIN core.devices USING (event_date, device_key) "
                          "WHERE is_machine")["n"][0]  # fmt: skip
    assert visits == 0


def test_machines_without_a_tac_are_found_by_behaviour_and_people_are_not(world: BuiltWorld) -> None:
    from crowd_platform.pseudonym import pseudonymise
    from crowd_platform_tests.conftest import TEST_KEY

    flagged = _read(world, "SELECT DISTINCT device_key FROM core.devices WHERE is_machine_by_behaviour")
    silent = [p.imsi for p in world.truth.persons if p.kind == "silent_machine"]
    people = [p.imsi for p in world.truth.persons if "machine" not in p.kind]
    assert silent and set(pseudonymise(TEST_KEY.encode(), silent)) <= set(flagged["device_key"])
    assert not set(pseudonymise(TEST_KEY.encode(), people)) & set(flagged["device_key"])
    # The silent machines stand in area A around the clock, yet they are not visitors there.
    visits = _read(world, "SELECT DISTINCT device_key FROM core.zone_visits")
    assert not set(pseudonymise(TEST_KEY.encode(), silent)) & set(visits["device_key"])


def test_raw_visitors_match_the_planned_visits(world: BuiltWorld) -> None:
    """Every planned presence of 25 minutes or more in a zone is found as a visit that day."""
    planned = {
        (day, zone)
        for (day, imsi, zone), minutes in world.truth.presence_min.items()
        if minutes >= 25 and not imsi.startswith("240019")
    }
    found = _read(world, "SELECT DISTINCT event_date, zone_id FROM core.zone_visits WHERE is_visit")
    found_pairs = {(r["event_date"], r["zone_id"]) for r in found.iter_rows(named=True)}
    assert {(d, z) for d, z in planned if z != "venue_v"} <= found_pairs
    truth_counts: dict[tuple[dt.date, str], int] = {}
    for (day, _imsi, zone), minutes in world.truth.presence_min.items():
        if minutes >= 25:
            truth_counts[(day, zone)] = truth_counts.get((day, zone), 0) + 1
    raw = _read(world, "SELECT event_date, zone_id, count(DISTINCT device_key) AS n FROM core.zone_visits "
                       "WHERE is_visit AND zone_id = 'area_b' GROUP BY ALL")  # fmt: skip
    for row in raw.iter_rows(named=True):
        # Area B has a single cell: visitors there are exactly the planned ones, plus short
        # presences that the midpoint rule stretches over 20 minutes.
        assert row["n"] >= truth_counts[(row["event_date"], "area_b")]


def test_the_daily_marts_count_visitor_days(world: BuiltWorld) -> None:
    """core.visitor_days holds each person's visits to a zone on a day once, and marts.zone_daily's raw counts
    are its rows and visits (devices without a weight left out, as everywhere in the marts)."""
    days = _read(world, "SELECT event_date, zone_id, device_key, visits, dwell_s FROM core.visitor_days")
    assert days.height > 0 and days.select("event_date", "zone_id", "device_key").is_unique().all()
    episodes = _read(world, "SELECT event_date, zone_id, device_key, count(*) AS visits, sum(dwell_s) AS dwell_s "
                            "FROM core.zone_visits WHERE is_visit GROUP BY ALL")  # fmt: skip
    assert days.sort(["event_date", "zone_id", "device_key"]).equals(
        episodes.sort(["event_date", "zone_id", "device_key"]), null_equal=True
    )
    published = _read(world, "SELECT event_date, zone_id, visitors, visits FROM marts.zone_daily WHERE NOT suppressed")
    counted = _read(world, "SELECT event_date, zone_id, count(*) AS visitors, sum(visits) AS visits "
                           "FROM core.visitor_days JOIN core.device_weights USING (event_date, device_key) "
                           "GROUP BY ALL")  # fmt: skip
    joined = published.join(counted, on=["event_date", "zone_id"], suffix="_counted")
    assert joined.height == published.height > 0
    assert (joined["visitors"] == joined["visitors_counted"]).all()
    assert (joined["visits"] == joined["visits_counted"]).all()


def test_event_kpis_have_the_headline_metrics(world: BuiltWorld) -> None:
    kpis = _read(world, "FROM marts.event_kpis")
    assert {"visits", "unique_visitors", "countries", "municipalities", "international_share",
            "median_dwell_min", "peak_day"} <= set(kpis["metric"])  # fmt: skip
    total = kpis.filter((pl.col("metric") == "visits") & pl.col("zone_id").is_null()).row(0, named=True)
    assert total["low"] <= total["value"] <= total["high"]
    unique = kpis.filter(pl.col("metric") == "unique_visitors")["value"][0]
    assert unique <= total["value"]  # each person once across days <= person-days
    countries = kpis.filter(pl.col("metric") == "countries")["value"][0]
    assert countries == 2  # Sweden and Denmark, both with at least k devices


def test_zone_attribution_counts_a_zone_by_the_cells_that_put_devices_in_it(private_world: BuiltWorld) -> None:
    """Venue V is counted through the small cell standing in it (a sector with 29 % of its coverage in V does
    not count); every zone of the world has a cell covering mostly it, so all are separable. With a weight
    threshold no cell reaches, the zones are counted only through cells standing in them: none is separable."""

    def attribution(methodology: Methodology) -> dict[str, tuple]:
        build_zone_attribution(con, methodology)
        rows = con.execute(
            "SELECT zone_id, counting_cells, separable, attribution_log_sd FROM reference.zone_attribution"
        )
        return {zone: rest for zone, *rest in rows.fetchall()}

    with duckdb.connect(str(private_world.warehouse)) as con:
        default, strict = attribution(Methodology()), attribution(Methodology(zone_min_weight=1.5))
    area, venue = Methodology().attribution_log_sd_area, Methodology().attribution_log_sd_venue
    assert default == {"area_a": [4, True, area], "area_b": [1, True, area], "venue_v": [1, True, venue]}
    assert strict == {"area_a": [4, False, area], "area_b": [1, False, area], "venue_v": [1, False, venue]}


def test_zone_daily_intervals_widen_by_the_attribution_error_of_areas_and_venues(
    private_world: BuiltWorld,
) -> None:
    """The zone attribution and the mart's SQL run without and with a log-scale attribution error: estimates
    stay, each bound moves by the factor e^(z sd) of the zone's kind (up to the rounding to 10), venues by
    their own sd; a zone not separable from its surroundings has its low ends at 0 either way."""
    area_sd, venue_sd = 0.2, 0.6

    def zone_daily(area: float, venue: float) -> pl.DataFrame:
        methodology = Methodology(attribution_log_sd_area=area, attribution_log_sd_venue=venue)
        params = {**methodology.sql_params(), "first_day": FIRST_DAY, "last_day": LAST_DAY}
        build_zone_attribution(con, methodology)
        # The world's venue has a small cell inside it; here it is as if its only cell covered mostly area A.
        con.execute("UPDATE reference.zone_attribution SET separable = false WHERE zone_id = 'venue_v'")
        query = load_sql("marts/zone_daily")
        return con.execute(f"FROM ({query}) WHERE NOT suppressed", bind(query, params)).pl()

    with duckdb.connect(str(private_world.warehouse)) as con:
        sampling_only, widened = zone_daily(0.0, 0.0), zone_daily(area_sd, venue_sd)
        parents = dict(con.execute("SELECT zone_id, parent_zone_id FROM reference.zones").fetchall())
        separable = dict(con.execute("SELECT zone_id, separable FROM reference.zone_attribution").fetchall())
    assert sampling_only.height and any(parents[z] for z in sampling_only["zone_id"]), "the world needs a venue"
    assert {separable[z] for z in sampling_only["zone_id"]} == {True, False}, "and zones of both sorts"
    rows = sampling_only.join(widened, on=["event_date", "zone_id"], suffix="_widened")
    assert rows.height == sampling_only.height
    z = Methodology().confidence_z
    for row in rows.iter_rows(named=True):
        factor = math.exp(z * (venue_sd if parents[row["zone_id"]] else area_sd))
        assert row["visitors_est_widened"] == row["visitors_est"]
        # The sampling bounds were rounded outward to 10 from the unrounded ones, then widened and rounded again.
        assert (row["visitors_est_high"] - 10) * factor <= row["visitors_est_high_widened"]
        assert row["visitors_est_high_widened"] <= row["visitors_est_high"] * factor + 10
        if not separable[row["zone_id"]]:
            assert row["visitors_est_low"] == row["visitors_est_low_widened"] == row["visits_est_low_widened"] == 0
            continue
        assert row["visitors_est_low"] / factor - 10 <= row["visitors_est_low_widened"]
        assert row["visitors_est_low_widened"] <= (row["visitors_est_low"] + 10) / factor
        assert row["visitors_est_low_widened"] > 0
