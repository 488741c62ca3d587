"""The methodology rules (DESIGN section 5, docs/methodology.md) on tiny hand-made event sequences.

One landing folder holds a handful of people, each written to exercise one rule with times chosen
at the rule's edge (19 vs 21 minutes, a gap just over the limit, a stay across midnight, ...).
It is materialised once through the real pipeline; every test reads one person's rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pytest

from crowd_platform.methodology import Methodology
from crowd_platform.pseudonym import pseudonymise
from crowd_platform.warehouse import bind, load_sql
from crowd_platform_tests.conftest import FIRST_DAY, LAST_DAY, TEST_KEY
from crowd_platform_tests.landing import (
    CELL_A,
    CELL_B,
    CELL_B_EDGE,
    HOME_HELSINGBORG,
    HOME_MALMO,
    _at,
    _write_delivery,
    write_reference,
)

DEFAULTS = Methodology()
DAYS = [FIRST_DAY + dt.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
EVENT_DAY = FIRST_DAY + dt.timedelta(days=8)  # homes are known by then (at least 7 earlier nights)
HELSINGBORG, MALMO = "1283", "1280"
PHONE_TAC = "35391800"

# name -> IMSI: MCC (3 digits) + MNC + subscriber number
IMSIS = {
    "ping_pong": "240010000000001",
    "stay_19_min": "240010000000002",
    "stay_21_min": "240010000000003",
    "gap_under_limit": "240010000000004",
    "gap_over_limit": "240010000000005",
    "across_midnight": "240010000000006",
    "hotel_guest": "240010000000007",
    "commuter": "240010000000008",
    "resident": "240010000000009",
    "duplicated": "240010000000010",
    "teleport": "240010000000011",
    "machine_by_tac": "240010000000012",
    "visitor_dk": "238010000000001",
    "visitor_no": "242010000000001",
    "visitor_de": "262010000000001",
    "visitor_fi": "244910000000001",
    "bridge_under_limit": "240010000000013",
    "bridge_over_limit": "240010000000014",
    "left_between": "240010000000015",
}
COUNTRY = {"visitor_dk": "DK", "visitor_no": "NO", "visitor_de": "DE", "visitor_fi": "FI"}


def _row(imsi: str, day: dt.date, minute: float, cell: str, tac: str | None = PHONE_TAC) -> dict:
    return {"event_time": _at(day, minute), "imsi": imsi, "cell_id": cell, "event_type": "data", "tac": tac}


def _every(imsi: str, day: dt.date, first_min: float, last_min: float, step_min: float, cell: str) -> list[dict]:
    """Events from first_min to last_min (both included) every step_min minutes after local midnight."""
    rows, minute = [], first_min
    while minute < last_min:
        rows.append(_row(imsi, day, minute, cell))
        minute += step_min
    return [*rows, _row(imsi, day, last_min, cell)]


def _nights(imsi: str, day: dt.date, cell: str, evening_cell: str | None = None) -> list[dict]:
    """Night pings (00:00-07:00 and 22:00-24:00 local) as an idle phone sends them; the evening may be elsewhere."""
    morning = [_row(imsi, day, minute, cell) for minute in range(5, 7 * 60, 50)]
    return morning + [_row(imsi, day, minute, evening_cell or cell) for minute in range(22 * 60 + 5, 24 * 60, 50)]


def _events_of_day(day: dt.date) -> list[dict]:
    rows: list[dict] = []
    on_event_day = day == EVENT_DAY
    if on_event_day:
        # A-B-A within the ping-pong limit: one event on a cell 2 km away in the middle of an hour in A.
        rows += _every(IMSIS["ping_pong"], day, 10 * 60, 11 * 60, 5, CELL_A)
        rows.append(_row(IMSIS["ping_pong"], day, 10 * 60 + 32, HOME_HELSINGBORG))
        # Either side of the visit threshold, nothing else that day (no neighbours stretch the stay).
        rows += _every(IMSIS["stay_19_min"], day, 12 * 60, 12 * 60 + 19, 3, CELL_B)
        rows += _every(IMSIS["stay_21_min"], day, 12 * 60, 12 * 60 + 21, 3, CELL_B)
        # Silence in a zone just under and just over the gap limit.
        gap = DEFAULTS.stay_max_gap_min
        for name, silence in (("gap_under_limit", gap - 1), ("gap_over_limit", gap + 1)):
            rows += _every(IMSIS[name], day, 9 * 60, 9 * 60 + 30, 5, CELL_B)
            rows += _every(IMSIS[name], day, 9 * 60 + 30 + silence, 9 * 60 + 60 + silence, 5, CELL_B)
        # Half an hour in B, then at a cell reaching into B from outside (or at home, away from B), then half
        # an hour in B again; the time in between just under and just over the bridge limit.
        bridge = DEFAULTS.visit_bridge_max_min
        for name, cell, between in (
            ("bridge_under_limit", CELL_B_EDGE, bridge - 6),  # 5 min of half-gaps: the time outside is bridge - 1
            ("bridge_over_limit", CELL_B_EDGE, bridge - 4),
            ("left_between", HOME_HELSINGBORG, 30),
        ):
            rows += _every(IMSIS[name], day, 10 * 60, 10 * 60 + 30, 5, CELL_B)
            rows += _every(IMSIS[name], day, 10 * 60 + 35, 10 * 60 + 35 + between, 5, cell)
            rows += _every(IMSIS[name], day, 10 * 60 + 40 + between, 10 * 60 + 70 + between, 5, CELL_B)
        # 23:30 to 00:30 in a zone: one visit, on the day it starts.
        rows += _every(IMSIS["across_midnight"], day, 23 * 60 + 30, 24 * 60 - 1, 5, CELL_A)
        rows += _every(IMSIS["across_midnight"], day + dt.timedelta(days=1), 0, 30, 5, CELL_A)
        # An exact duplicate of every row: counted once.
        duplicated = _every(IMSIS["duplicated"], day, 14 * 60, 14 * 60 + 40, 5, CELL_A)
        rows += duplicated + [dict(row) for row in duplicated]
        # 60 s in Malmö (55 km away) in the middle of an hour in A: an impossible jump.
        rows += _every(IMSIS["teleport"], day, 15 * 60, 16 * 60, 5, CELL_A)
        rows.append(_row(IMSIS["teleport"], day, 15 * 60 + 31, HOME_MALMO))
        # A metering SIM (machine TAC) that sits in A for hours.
        meter = _every(IMSIS["machine_by_tac"], day, 8 * 60, 18 * 60, 10, CELL_A)
        rows += [{**row, "tac": "86675800"} for row in meter]
        # Foreign SIMs: an afternoon in A.
        for name in COUNTRY:
            rows += _every(IMSIS[name], day, 13 * 60, 14 * 60, 6, CELL_A)
    # Homes: the hotel guest sleeps in Malmö until the event, then in a Helsingborg hotel.
    rows += _nights(
        IMSIS["hotel_guest"],
        day,
        HOME_HELSINGBORG if day > EVENT_DAY else HOME_MALMO,
        evening_cell=HOME_HELSINGBORG if day >= EVENT_DAY else HOME_MALMO,
    )
    if day >= EVENT_DAY:
        rows += _every(IMSIS["hotel_guest"], day, 10 * 60, 13 * 60, 10, CELL_A)
    # The commuter sleeps in Malmö and works in A; the resident sleeps in Helsingborg and works in A.
    for name, home in (("commuter", HOME_MALMO), ("resident", HOME_HELSINGBORG)):
        rows += _nights(IMSIS[name], day, home)
        if day.weekday() < 5 or on_event_day:
            rows += _every(IMSIS[name], day, 9 * 60, 17 * 60, 10, CELL_A)
    return rows


def _write_landing(root: Path) -> None:
    write_reference(root, FIRST_DAY, LAST_DAY)
    by_delivery: dict[dt.date, list[dict]] = {}
    for day in DAYS:
        for row in _events_of_day(day):
            by_delivery.setdefault(row["event_time"].date(), []).append(row)
    for day, rows in sorted(by_delivery.items()):
        _write_delivery(root, day, rows, fmt="parquet")


@pytest.fixture(scope="module")
def read(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], pl.DataFrame]:
    from crowd_platform.runner import materialize

    root = tmp_path_factory.mktemp("methodology")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    _write_landing(landing)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROWD_LANDING_DIR", str(landing))
        patch.setenv("CROWD_WAREHOUSE", str(warehouse))
        materialize(FIRST_DAY, LAST_DAY, quiet=True, progress=lambda _: None)

    def query(sql: str) -> pl.DataFrame:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            con.execute("SET TimeZone = 'Europe/Stockholm'")
            return con.execute(sql).pl()

    return query


DEVICE = dict(zip(IMSIS, pseudonymise(TEST_KEY.encode(), list(IMSIS.values())), strict=True))


def _rows(read: Callable[[str], pl.DataFrame], table: str, name: str, order: str) -> pl.DataFrame:
    return read(f"SELECT * FROM {table} WHERE device_key = '{DEVICE[name]}' ORDER BY {order}")


def _visits(read: Callable[[str], pl.DataFrame], name: str) -> pl.DataFrame:
    return _rows(read, "core.zone_visits", name, "visit_start, zone_id")


def test_a_single_flip_to_another_cell_does_not_break_a_stay(read) -> None:
    stays = _rows(read, "core.stays", "ping_pong", "stay_start")
    assert stays["place"].to_list() == [CELL_A]
    assert stays["duration_s"].to_list() == [3600]
    visits = _visits(read, "ping_pong")
    assert visits.select("zone_id", "dwell_s", "is_visit").rows() == [("area_a", 3600, True)]


def test_19_minutes_is_a_passer_by_and_21_minutes_a_visit(read) -> None:
    short, long = _visits(read, "stay_19_min"), _visits(read, "stay_21_min")
    assert short.select("zone_id", "dwell_s", "is_visit").rows() == [("area_b", 19 * 60, False)]
    assert long.select("zone_id", "dwell_s", "is_visit").rows() == [("area_b", 21 * 60, True)]


def test_a_gap_over_the_limit_splits_a_visit_and_one_under_it_does_not(read) -> None:
    gap = DEFAULTS.stay_max_gap_min
    under = _visits(read, "gap_under_limit")
    assert under.select("dwell_s", "is_visit").rows() == [((60 + gap - 1) * 60, True)]
    over = _visits(read, "gap_over_limit")
    # Presence during the silence is unknown, not assumed: two visits of 30 minutes each.
    assert over.select("dwell_s", "is_visit").rows() == [(30 * 60, True), (30 * 60, True)]
    assert (over["visit_start"][1] - over["visit_end"][0]) == dt.timedelta(minutes=gap + 1)
    # Still one person in the zone that day (a visitor-day, what the marts count), with the hour together.
    days = _rows(read, "core.visitor_days", "gap_over_limit", "zone_id")
    assert days.select("zone_id", "visits", "dwell_s").rows() == [("area_b", 2, 60 * 60)]


def test_time_at_a_cell_reaching_into_the_zone_does_not_end_a_visit_up_to_the_limit(read) -> None:
    bridge = DEFAULTS.visit_bridge_max_min
    under = _visits(read, "bridge_under_limit")
    assert under.select("zone_id", "dwell_s", "is_visit").rows() == [("area_b", (bridge + 64) * 60, True)]
    over = _visits(read, "bridge_over_limit")
    assert over.select("zone_id", "dwell_s", "is_visit").rows() == [("area_b", 32.5 * 60, True)] * 2
    assert over["visit_start"][1] - over["visit_end"][0] == dt.timedelta(minutes=bridge + 1)
    # Seen at a cell whose coverage does not reach the zone: gone, however short.
    left = _visits(read, "left_between")
    assert left.select("zone_id", "dwell_s", "is_visit").rows() == [("area_b", 32.5 * 60, True)] * 2


def test_a_visit_across_midnight_is_one_visit_on_the_day_it_starts(read) -> None:
    visits = _visits(read, "across_midnight")
    assert visits.select("event_date", "zone_id", "dwell_s", "is_visit").rows() == [(EVENT_DAY, "area_a", 3600, True)]
    stays = _rows(read, "core.stays", "across_midnight", "stay_start")
    assert stays.select("event_date", "duration_s").rows() == [(EVENT_DAY, 3600)]


def test_exact_duplicates_count_once(read) -> None:
    staged = _rows(read, "staging.events", "duplicated", "event_time")
    assert staged.height == 9  # 14:00 .. 14:40 every 5 minutes, each delivered twice
    audit = read(f"SELECT sum(duplicate_rows) AS duplicates FROM staging.load_audit WHERE event_date = '{EVENT_DAY}'")
    assert audit["duplicates"][0] >= 9
    assert _visits(read, "duplicated").select("dwell_s").rows() == [(40 * 60,)]


def test_a_teleport_is_flagged_and_left_out_of_stays(read) -> None:
    flags = _rows(read, "core.event_flags", "teleport", "event_time")
    assert flags.select("cell_id").rows() == [(HOME_MALMO,)]
    assert flags["rule"].to_list() == ["impossible_jump"]
    stays = _rows(read, "core.stays", "teleport", "stay_start")
    assert stays["place"].to_list() == [CELL_A] and stays["duration_s"].to_list() == [3600]


def test_a_machine_sim_is_not_a_visitor(read) -> None:
    devices = _rows(read, "core.devices", "machine_by_tac", "event_date")
    assert devices["is_machine"].to_list() == [True]
    assert _visits(read, "machine_by_tac").is_empty()


def test_a_machine_sim_missed_on_some_days_gets_no_home() -> None:
    """core.device_homes on hand-made devices and nights: a SIM seen as a machine on any day of the home
    window (the 28 nights before and the day) gets no home, even on a day its behaviour passed for a
    person's; one last seen as a machine before the window, and a person, get their home."""
    day = dt.date(2022, 6, 20)
    days = [day - dt.timedelta(days=offset) for offset in range(40, -1, -1)]
    machine_on = {
        "machine_missed_today": {d for d in days if d not in (day, day - dt.timedelta(days=5))},
        "machine_long_ago": {days[0]},  # 40 days before: outside the window
        "person": set(),
    }
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    con.execute("CREATE TABLE core.devices (event_date DATE, device_key VARCHAR, home_mcc VARCHAR, is_machine BOOLEAN)")
    con.executemany("INSERT INTO core.devices VALUES (?, ?, '240', ?)",
                    [(d, key, d in machine) for key, machine in machine_on.items() for d in days])  # fmt: skip
    con.execute("CREATE TABLE core.device_nights (event_date DATE, device_key VARCHAR, night_municipality VARCHAR)")
    con.executemany("INSERT INTO core.device_nights VALUES (?, ?, '1283')",
                    [(d, key) for key in machine_on for d in days if d < day])  # fmt: skip
    query = load_sql("core/device_homes")
    params = bind(query, {**DEFAULTS.sql_params(), "first_day": day, "last_day": day})
    homes = dict(con.execute(f"SELECT device_key, home_municipality FROM ({query})", params).fetchall())
    assert homes == {"machine_long_ago": "1283", "person": "1283"}


def test_a_hotel_guest_keeps_their_real_home(read) -> None:
    homes = _rows(read, "core.device_homes", "hotel_guest", "event_date")
    last = homes.filter(pl.col("event_date") == LAST_DAY).row(0, named=True)
    assert last["home_municipality"] == MALMO
    assert last["nights_observed"] >= DEFAULTS.home_min_nights
    assert last["nights_at_home"] < last["nights_observed"]  # the hotel nights are seen, and outvoted
    visits = _visits(read, "hotel_guest")
    assert visits.height == (LAST_DAY - EVENT_DAY).days + 1
    assert set(visits["visitor_class"]) == {"domestic_visitor"}
    assert set(visits["home_municipality"]) == {MALMO}


def test_a_commuter_is_a_domestic_visitor_and_a_resident_a_resident(read) -> None:
    commuter = _visits(read, "commuter").filter(pl.col("event_date") >= EVENT_DAY)
    assert not commuter.is_empty()
    assert set(commuter["visitor_class"]) == {"domestic_visitor"}
    assert set(commuter["home_municipality"]) == {MALMO}
    resident = _visits(read, "resident").filter(pl.col("event_date") >= EVENT_DAY)
    assert set(resident["visitor_class"]) == {"resident"}
    assert set(resident["home_municipality"]) == {HELSINGBORG}
    # Before seven nights are observed the home is unknown, and so is the class.
    early = _visits(read, "resident").filter(pl.col("event_date") == FIRST_DAY)
    assert set(early["visitor_class"]) == {"unknown"}


@pytest.mark.parametrize("name", sorted(COUNTRY))
def test_a_foreign_sim_is_an_international_visitor_from_its_country(read, name: str) -> None:
    visits = _visits(read, name)
    assert visits.select("zone_id", "visitor_class", "origin_country", "home_municipality").rows() == [
        ("area_a", "international_visitor", COUNTRY[name], None)
    ]
