"""The speed-ups of core.event_flags and core.devices (docs/performance.md) compute what the plain
definitions compute.

- core.event_flags, one window pass over every event with the two rules applied in turn only to the
  devices that have a crowded second, equals the rules applied step by step in Python (several cells
  in one second, then teleports among the events that remain) on random devices with crowded
  seconds, teleports, ties and far cells;
- core.devices, with local hours from a table of UTC hours and distinct hours counted as changes in
  time order, equals the plain definitions (distinct local hours, gaps within the day) on the days
  the clocks change, in Stockholm and in time zones whose offsets or changes are not whole hours.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import statistics
from zoneinfo import ZoneInfo

import duckdb
import pytest

from crowd_platform.methodology import Methodology
from crowd_platform.warehouse import bind, load_sql

US = 1_000_000
# Cells on a line from a common point: the first ones neighbours, the last ones far enough apart
# (tens of kilometres) for a quick hop between them to be a teleport.
CELLS = {
    f"cell-{number:02d}": (56.0 + offset_km / 110.574, 12.7, range_m)
    for number, (offset_km, range_m) in enumerate(
        [(0, 500), (0.4, 300), (0.9, 800), (1.5, 500), (40, 2000), (80, 1000), (120, 3000), (300, 5000)]
    )
}


def _connection(time_zone: str) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse in `time_zone` with the schemas the steps read."""
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{time_zone}'")
    for schema in ("staging", "reference"):
        con.execute(f"CREATE SCHEMA {schema}")
    return con


def _local_day_start_us(day: dt.date, zone: ZoneInfo) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=zone).timestamp() * US)


def _local_date(t_us: int, zone: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(t_us / US, zone).date()


def _by_device_and_day(events: list[tuple[str, int, str]], zone: ZoneInfo) -> dict[tuple, list]:
    groups: dict[tuple, list] = {}
    for event in events:
        groups.setdefault((event[0], _local_date(event[1], zone)), []).append(event)
    return groups


def _flags_step_by_step(events: list[tuple[str, int, str]], day: dt.date, zone: ZoneInfo, m: Methodology) -> list:
    """The two rules of sql/core/event_flags.sql, one after the other, for the events of D-1..D+1."""
    flags = []
    for device in sorted({d for d, _, _ in events}):
        rows = sorted((t, c) for d, t, c in events if d == device)
        cells_in_second: dict[int, set[str]] = {}
        for t, cell in rows:
            cells_in_second.setdefault(t // US, set()).add(cell)
        kept = []
        for t, cell in rows:
            if cell != min(cells_in_second[t // US]):
                flags.append((device, t, cell, "same_second_other_cell"))
            else:
                kept.append((t, cell))

        def km_between(a: str, b: str) -> float:
            (lat_a, lon_a, range_a), (lat_b, lon_b, range_b) = CELLS[a], CELLS[b]
            site_km = math.sqrt(
                ((lat_a - lat_b) * 110.574) ** 2 + ((lon_a - lon_b) * 111.320 * math.cos(math.radians(lat_a))) ** 2
            )
            return site_km - range_a / 1000 - range_b / 1000

        for i in range(1, len(kept) - 1):
            (t_before, before), (t, cell), (t_after, after) = kept[i - 1], kept[i], kept[i + 1]
            km_from, km_to = km_between(cell, before), km_between(cell, after)
            if (
                km_from > m.jump_min_km
                and km_to > m.jump_min_km
                and km_from * 1000 / max((t - t_before) / US, 1) > m.jump_min_speed_mps
                and km_to * 1000 / max((t_after - t) / US, 1) > m.jump_min_speed_mps
            ):
                flags.append((device, t, cell, "impossible_jump"))
    return sorted(flag for flag in flags if _local_date(flag[1], zone) == day)


def test_event_flags_in_one_pass_equal_the_rules_step_by_step() -> None:
    generator = random.Random(11)
    zone = ZoneInfo("Europe/Stockholm")
    day = dt.date(2022, 6, 2)
    day_start = _local_day_start_us(day, zone)
    near, far = list(CELLS)[:4], list(CELLS)[4:]
    events: list[tuple[str, int, str]] = []
    for device_number in range(120):
        device = f"device-{device_number:03d}"
        home = generator.choice(near)
        t = day_start - 86_400 * US + generator.randrange(3 * 86_400) * US
        if device_number % 4 == 0:  # around a midnight, where a neighbour lies in the next or previous day
            t = day_start + generator.choice([0, 86_400]) * US - generator.randrange(3_600) * US
        for _ in range(generator.randrange(2, 40)):
            t += generator.choice([1, 30, 200, 900, 3000]) * US + generator.randrange(US)
            roll = generator.random()
            if roll < 0.08:  # a teleport and back
                events.append((device, t, generator.choice(far)))
            elif roll < 0.14:  # several cells within one second (and maybe within the same microsecond)
                events.append((device, t, home))
                t += generator.choice([0, 0, 1, 400_000])
                events.append((device, t, generator.choice(near + far[:1])))
            elif roll < 0.17:  # the same time and cell twice (another event type)
                events += [(device, t, home), (device, t, home)]
            else:
                events.append((device, t, generator.choice([home, home, home, *near])))
    # The day's neighbours are read only at their edges: a teleport as the day's last event whose next
    # event comes early the next day, and one as the day's first event after a crowded last second of
    # the day before (the smallest cell of that second is its previous event).
    home, far_cell = near[0], far[-1]
    next_day_start = _local_day_start_us(day + dt.timedelta(days=1), zone)
    events += [
        ("edge-last", next_day_start - 80 * US, home),
        ("edge-last", next_day_start - 20 * US, far_cell),
        ("edge-last", next_day_start + 40 * US + 500_000, home),
        ("edge-last", next_day_start + 3 * 3_600 * US, home),
        ("edge-first", day_start - 30 * US + 100_000, far_cell),
        ("edge-first", day_start - 30 * US + 200_000, home),
        ("edge-first", day_start - 60 * US, home),
        ("edge-first", day_start + 25 * US, far[0]),
        ("edge-first", day_start + 50 * US, home),
    ]
    # Of those edges only the reach of a jump is read (about 1.5 h here: the 300 km between the furthest
    # cells at the speed limit): teleports to the far cell whose neighbour in the day before or after
    # lies 5,320 s away (294.5 km between the coverage edges: 55.4 m/s, just a jump).
    events += [
        ("edge-reach-before", day_start - 5_300 * US, home),
        ("edge-reach-before", day_start + 20 * US, far_cell),
        ("edge-reach-before", day_start + 40 * US, home),
        ("edge-reach-after", next_day_start - 40 * US, home),
        ("edge-reach-after", next_day_start - 20 * US, far_cell),
        ("edge-reach-after", next_day_start + 5_300 * US, home),
    ]
    con = _connection("Europe/Stockholm")
    con.execute(
        "CREATE TABLE staging.events (event_date DATE, device_key VARCHAR, event_time TIMESTAMPTZ, cell_id VARCHAR)"
    )
    con.executemany(
        "INSERT INTO staging.events SELECT CAST(make_timestamptz(?) AS DATE), ?, make_timestamptz(?), ?",
        [[t, d, t, c] for d, t, c in events],
    )
    con.execute("CREATE TABLE reference.cells (cell_id VARCHAR, latitude DOUBLE, longitude DOUBLE, range_m DOUBLE)")
    con.executemany("INSERT INTO reference.cells VALUES (?, ?, ?, ?)", [[c, *v] for c, v in CELLS.items()])
    query = load_sql("core/event_flags")
    params = {**Methodology().sql_params(), "first_day": day, "last_day": day}
    found = con.execute(
        f"SELECT device_key, epoch_us(event_time), cell_id, rule FROM ({query}) ORDER BY ALL", bind(query, params)
    ).fetchall()
    window = {day + dt.timedelta(days=offset) for offset in (-1, 0, 1)}
    expected = _flags_step_by_step(
        [(d, t, c) for d, t, c in events if _local_date(t, zone) in window], day, zone, Methodology()
    )
    rules = {rule for *_, rule in expected}
    assert rules == {"same_second_other_cell", "impossible_jump"}
    assert {(device, rule) for device, *_, rule in expected if device.startswith("edge")} == {
        ("edge-last", "impossible_jump"),
        ("edge-first", "impossible_jump"),
        ("edge-reach-before", "impossible_jump"),
        ("edge-reach-after", "impossible_jump"),
    }
    assert len(expected) > 50
    assert found == expected


# Days where local hours are not simply UTC hours shifted: the per-hour tables of core.devices and
# core.device_nights must fall back to converting event by event, or agree with the conversion.
TIME_ZONE_DAYS = [
    # summer, and the spring and autumn changes (01:00 UTC)
    ("Europe/Stockholm", [dt.date(2022, 6, 2), dt.date(2022, 3, 27), dt.date(2022, 10, 30)]),
    # an offset of whole hours plus 30 minutes: every hour is converted event by event
    ("Asia/Kolkata", [dt.date(2022, 6, 2)]),
    # a change of 30 minutes (back on 3 April, forward on 2 October 2022)
    ("Australia/Lord_Howe", [dt.date(2022, 4, 3), dt.date(2022, 10, 2)]),
]


@pytest.mark.parametrize(("time_zone", "days"), TIME_ZONE_DAYS)
def test_devices_hours_and_gaps_equal_the_plain_definitions(time_zone: str, days: list[dt.date]) -> None:
    generator = random.Random(time_zone)
    zone = ZoneInfo(time_zone)
    events: list[tuple[str, int, str]] = []
    for day in days:
        day_start, day_end = _local_day_start_us(day, zone), _local_day_start_us(day + dt.timedelta(days=1), zone)
        for device_number in range(40):
            device = f"device-{device_number:02d}"
            times = [generator.randrange(day_start, day_end) for _ in range(generator.randrange(1, 60))]
            times += generator.sample(times, min(3, len(times)))  # the same time twice
            events += [(device, t, generator.choice(list(CELLS)[:3])) for t in times]
    con = _connection(time_zone)
    con.execute(
        "CREATE TABLE staging.events (event_date DATE, device_key VARCHAR, event_time TIMESTAMPTZ, cell_id VARCHAR, "
        "home_mcc VARCHAR, home_mnc VARCHAR, tac VARCHAR)"
    )
    con.executemany(
        "INSERT INTO staging.events VALUES (?, ?, make_timestamptz(?), ?, '240', '01', '35000000')",
        [[_local_date(t, zone), d, t, c] for d, t, c in events],
    )
    con.execute("CREATE TABLE reference.cells (cell_id VARCHAR, latitude DOUBLE, longitude DOUBLE, range_m DOUBLE)")
    con.executemany("INSERT INTO reference.cells VALUES (?, ?, ?, ?)", [[c, *v] for c, v in CELLS.items()])
    con.execute("CREATE TABLE reference.tac_classes AS SELECT '35' AS tac_prefix, 'smartphone' AS device_class")
    con.execute("CREATE TABLE reference.mcc_countries AS SELECT '240' AS mcc, 'SE' AS country_iso2")
    query = load_sql("core/devices")
    found = {}
    for day in days:
        params = {**Methodology().sql_params(), "first_day": day, "last_day": day}
        for row in con.execute(
            f"SELECT event_date, device_key, n_events, n_cells, active_hours, gap_cv FROM ({query})",
            bind(query, params),
        ).fetchall():
            found[row[:2]] = row[2:]

    expected = {}
    for day in days:
        for device in sorted({d for d, _, _ in events}):
            rows = sorted((t, c) for d, t, c in events if d == device and _local_date(t, zone) == day)
            if not rows:
                continue
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(rows)]
            hours = {dt.datetime.fromtimestamp(t / US, zone).hour for t, _ in rows}
            mean = statistics.fmean(gaps) if gaps else None
            gap_cv = statistics.pstdev(gaps) / mean if mean else None
            expected[(day, device)] = (len(rows), len({c for _, c in rows}), len(hours), gap_cv)
    assert found.keys() == expected.keys()
    for key, (n_events, n_cells, active_hours, gap_cv) in expected.items():
        assert found[key][:3] == (n_events, n_cells, active_hours), key
        assert (found[key][3] is None) == (gap_cv is None), key
        if gap_cv is not None:
            assert found[key][3] == pytest.approx(gap_cv, rel=1e-9), key
    # Where the clocks go back, some device is seen twice in the repeated hour (once per offset):
    # the hour counts once.
    repeated_hour_seen = any(
        len({dt.datetime.fromtimestamp(t / US, zone).hour for _, t, _ in group})
        < len(
            {
                (dt.datetime.fromtimestamp(t / US, zone).hour, dt.datetime.fromtimestamp(t / US, zone).utcoffset())
                for _, t, _ in group
            }
        )
        for group in _by_device_and_day(events, zone).values()
    )
    clocks_go_back = any(
        _local_day_start_us(day + dt.timedelta(days=1), zone) - _local_day_start_us(day, zone) > 86_400 * US
        for day in days
    )
    assert repeated_hour_seen == clocks_go_back


# The plain definition of core.device_nights' hours: distinct local hours (as the instants they start)
# per device, night and municipality, by a time-zone truncation of every event.
PLAIN_NIGHT_HOURS = """
SELECT nights.day AS event_date, events.device_key, cells.municipality_code,
       count(DISTINCT date_trunc('hour', events.event_time)) AS hours
FROM staging.events AS events
JOIN (SELECT CAST($day AS DATE) AS day,
             CAST(CAST($day AS DATE) AS TIMESTAMPTZ) + to_hours(CAST($night_start_hour AS BIGINT)) AS night_start,
             CAST(CAST($day AS DATE) + 1 AS TIMESTAMPTZ) + to_hours(CAST($night_end_hour AS BIGINT)) AS night_end
     ) AS nights ON events.event_time >= nights.night_start AND events.event_time < nights.night_end
JOIN reference.cells AS cells ON cells.cell_id = events.cell_id
GROUP BY ALL
"""


@pytest.mark.parametrize(
    ("time_zone", "days"),
    # the nights that end on those days
    [(zone, [day - dt.timedelta(days=1) for day in days]) for zone, days in TIME_ZONE_DAYS],
)
def test_device_nights_hours_equal_the_plain_definition(time_zone: str, days: list[dt.date]) -> None:
    """core.device_nights truncates events to their local hour once per UTC hour where that hour lies
    within one local hour: the hours it counts equal a time-zone truncation of every event."""
    generator = random.Random(f"nights {time_zone}")
    zone = ZoneInfo(time_zone)
    municipalities = {cell: f"{1200 + number % 3}" for number, cell in enumerate(CELLS)}
    events: list[tuple[str, int, str]] = []
    for day in days:
        evening = _local_day_start_us(day, zone) + 20 * 3_600 * US
        for device_number in range(30):
            times = [evening + generator.randrange(14 * 3_600) * US for _ in range(generator.randrange(1, 40))]
            events += [(f"device-{device_number:02d}", t, generator.choice(list(CELLS))) for t in times]
    con = _connection(time_zone)
    con.execute(
        "CREATE TABLE staging.events (event_date DATE, device_key VARCHAR, event_time TIMESTAMPTZ, cell_id VARCHAR)"
    )
    con.executemany(
        "INSERT INTO staging.events VALUES (?, ?, make_timestamptz(?), ?)",
        [[_local_date(t, zone), d, t, c] for d, t, c in events],
    )
    con.execute(
        "CREATE TABLE reference.cells (cell_id VARCHAR, municipality_code VARCHAR, valid_from DATE, valid_to DATE)"
    )
    con.executemany(
        "INSERT INTO reference.cells VALUES (?, ?, DATE '2020-01-01', NULL)",
        [[c, m] for c, m in municipalities.items()],
    )
    query = load_sql("core/device_nights")
    methodology = Methodology()
    for day in days:
        params = {**methodology.sql_params(), "first_day": day, "last_day": day}
        found = con.execute(
            f"SELECT device_key, night_municipality, hours_in_municipality, hours_observed FROM ({query}) ORDER BY ALL",
            bind(query, params),
        ).fetchall()
        plain_params = {**methodology.sql_params(), "day": day}
        plain = con.execute(
            "SELECT device_key, arg_max(municipality_code, struct_pack(h := hours, m := municipality_code)), "
            f"max(hours), sum(hours) FROM ({PLAIN_NIGHT_HOURS}) GROUP BY device_key ORDER BY ALL",
            bind(PLAIN_NIGHT_HOURS, plain_params),
        ).fetchall()
        assert len(found) > 20
        assert found == plain, day
