"""A tiny hand-made landing folder for tests: a few cells, zones and people with known plans.

Files are written to disk exactly per the landing contract (DESIGN section 3) and read back by
the pipeline's ingest, never injected. Known truths (who visited which zone how long) are
returned so tests can compare.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

STOCKHOLM = ZoneInfo("Europe/Stockholm")

# Zone polygons (lon, lat) in central Helsingborg; V is a venue inside area A.
ZONE_A = [(12.690, 56.043), (12.700, 56.043), (12.700, 56.050), (12.690, 56.050)]
ZONE_V = [(12.693, 56.045), (12.696, 56.045), (12.696, 56.047), (12.693, 56.047)]
ZONE_B = [(12.720, 56.058), (12.730, 56.058), (12.730, 56.065), (12.720, 56.065)]

CELLS = [
    # cell_id, lat, lon, azimuth, beamwidth, range, technology, valid_from, valid_to
    ("240-01-1-1", 56.0485, 12.6980, None, None, 150, "LTE", "2022-01-01", None),  # in A
    ("240-01-1-2", 56.0470, 12.6910, 90, 60, 200, "LTE", "2022-01-01", None),  # sector into A
    ("240-01-2-1", 56.0460, 12.6945, None, None, 50, "NR", "2022-01-01", None),  # venue V
    ("240-01-3-1", 56.0615, 12.7250, None, None, 200, "LTE", "2022-01-01", None),  # in B
    ("240-01-3-2", 56.0615, 12.7315, None, None, 200, "LTE", "2022-01-01", None),  # 90 m east of B, reaching in
    ("240-01-4-1", 56.0300, 12.7000, None, None, 300, "LTE", "2022-01-01", None),  # homes, Helsingborg
    ("240-01-5-1", 55.6000, 13.0000, None, None, 2000, "LTE", "2022-01-01", None),  # homes, Malmö
    ("240-01-9-1", 56.0440, 12.6920, None, None, 80, "NR", "2022-06-02", "2022-06-03"),  # temporary, in A
]
HOME_HELSINGBORG = "240-01-4-1"
HOME_MALMO = "240-01-5-1"
CELL_A = "240-01-1-1"
CELL_A_SECTOR = "240-01-1-2"
CELL_V = "240-01-2-1"
CELL_B = "240-01-3-1"
CELL_B_EDGE = "240-01-3-2"  # about a fifth of its coverage in B: does not count there


@dataclass
class Person:
    imsi: str
    kind: str  # resident | malmo_visitor | danish_visitor | machine | silent_machine
    home_cell: str | None
    tac: str | None


@dataclass
class LandingTruth:
    persons: list[Person] = field(default_factory=list)
    # (day, imsi, zone_id) -> planned presence in minutes
    presence_min: dict[tuple[dt.date, str, str], float] = field(default_factory=dict)
    dirt: dict[str, int] = field(default_factory=dict)  # rows rejected (by reason) or duplicate
    flags: dict[str, int] = field(default_factory=dict)  # rows staged, then left out of stays (by rule)


def _polygon(points: list[tuple[float, float]]) -> dict:
    return {"type": "Polygon", "coordinates": [[*map(list, points), list(points[0])]]}


def write_reference(root: Path, first_day: dt.date, last_day: dt.date) -> None:
    ref = root / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        [
            {
                "cell_id": c[0],
                "latitude": c[1],
                "longitude": c[2],
                "azimuth_deg": c[3],
                "beamwidth_deg": c[4],
                "range_m": c[5],
                "technology": c[6],
                "valid_from": c[7],
                "valid_to": c[8],
            }
            for c in CELLS
        ],
        schema_overrides={"azimuth_deg": pl.Float64, "beamwidth_deg": pl.Float64, "valid_to": pl.String},
    ).write_csv(ref / "cells.csv")
    features = [
        {"type": "Feature", "geometry": _polygon(ZONE_A),
         "properties": {"zone_id": "area_a", "name": "Area A", "kind": "area", "parent_zone_id": None}},
        {"type": "Feature", "geometry": _polygon(ZONE_V),
         "properties": {"zone_id": "venue_v", "name": "Venue V", "kind": "venue", "parent_zone_id": "area_a"}},
        {"type": "Feature", "geometry": _polygon(ZONE_B),
         "properties": {"zone_id": "area_b", "name": "Area B", "kind": "area", "parent_zone_id": None}},
    ]  # fmt: skip
    (ref / "zones.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    (ref / "events.toml").write_text(
        "[[events]]\n"
        'id = "test_expo"\nname = "Test Expo"\n'
        f"start = {first_day.isoformat()}\nend = {last_day.isoformat()}\n"
        'main_zones = ["area_a", "area_b"]\nhost_municipality = "1283"\n'
    )
    (ref / "population.csv").write_text("municipality_code,population\n1283,149000\n1280,357000\n")
    (ref / "roaming_shares.csv").write_text("country_iso2,share\nDK,0.25\n")


def _at(day: dt.date, minutes: float) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), STOCKHOLM) + dt.timedelta(minutes=minutes)


def build_persons(
    n_residents: int, n_malmo: int, n_danes: int, n_machines: int, n_silent_machines: int = 0
) -> list[Person]:
    persons = []
    for i in range(n_residents):
        persons.append(Person(f"24001{i:010d}", "resident", HOME_HELSINGBORG, "35391800"))
    for i in range(n_malmo):
        persons.append(Person(f"24001{5_000_000 + i:010d}", "malmo_visitor", HOME_MALMO, "35391800"))
    for i in range(n_danes):
        persons.append(Person(f"23801{i:010d}", "danish_visitor", None, "35391800"))
    for i in range(n_machines):
        persons.append(Person(f"24001{9_000_000 + i:010d}", "machine", HOME_HELSINGBORG, "86675800"))
    for i in range(n_silent_machines):  # no TAC in the feed: only behaviour tells
        persons.append(Person(f"24001{9_500_000 + i:010d}", "silent_machine", CELL_A, None))
    return persons


def events_for_day(person: Person, day: dt.date, rng: random.Random, truth: LandingTruth) -> list[dict]:
    rows: list[dict] = []

    def ping(minutes: float, cell: str, kind: str = "location_update") -> None:
        rows.append({"event_time": _at(day, minutes), "imsi": person.imsi, "cell_id": cell,
                     "event_type": kind, "tac": person.tac})  # fmt: skip

    if person.kind in ("machine", "silent_machine"):
        for minute in range(0, 24 * 60, 30):  # machine-regular timing at one place
            ping(minute + rng.uniform(0, 0.5), person.home_cell or HOME_HELSINGBORG, "data")
        return rows
    if person.home_cell:  # night at home: 00:00-07:00 and 22:00-24:00
        for minute in [*range(5, 7 * 60, 50), *range(22 * 60 + 5, 24 * 60, 50)]:
            ping(minute + rng.random(), person.home_cell)
    # One visit to a zone during the day, of a known length (some shorter than 20 minutes).
    zone, cell = rng.choice([("area_a", CELL_A), ("area_b", CELL_B), ("venue_v", CELL_V)])
    start = rng.uniform(9 * 60, 15 * 60)
    length = rng.choice([12, 25, 45, 90])
    minute = start
    while minute <= start + length:
        ping(minute, cell, rng.choice(["data", "data", "call", "sms"]))
        minute += rng.uniform(4, 9)
    ping(start + length, cell, "data")
    truth.presence_min[(day, person.imsi, zone)] = length
    if person.home_cell:  # back home in the evening
        ping(start + length + 60, person.home_cell)
    return rows


def write_landing(
    root: Path,
    first_day: dt.date,
    last_day: dt.date,
    *,
    n_residents: int = 30,
    n_malmo: int = 15,
    n_danes: int = 12,
    n_machines: int = 3,
    n_silent_machines: int = 2,
    seed: int = 7,
    dirt: bool = True,
) -> LandingTruth:
    """Write reference files and one delivery folder per day (plus late arrivals next day)."""
    rng = random.Random(seed)
    truth = LandingTruth(persons=build_persons(n_residents, n_malmo, n_danes, n_machines, n_silent_machines))
    write_reference(root, first_day, last_day)
    days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    deliveries: dict[dt.date, list[dict]] = {d: [] for d in [*days, last_day + dt.timedelta(days=1)]}
    for day in days:
        for person in truth.persons:
            for row in events_for_day(person, day, rng, truth):
                # Late arrivals: the evening's events of some people land in the next day's folder.
                late = row["event_time"].hour >= 22 and person.imsi.endswith("3")
                deliveries[day + dt.timedelta(days=1) if late else day].append(row)
    if dirt:
        truth.dirt = _add_dirt(deliveries[first_day], first_day)
        truth.flags = _add_semantic_dirt(deliveries[first_day])
    for number, (day, rows) in enumerate(sorted(deliveries.items())):
        if rows:
            _write_delivery(root, day, rows, fmt=("parquet", "csv.gz", "csv")[number % 3])
    return truth


def _add_dirt(rows: list[dict], day: dt.date) -> dict[str, int]:
    good = rows[0]
    rows.append(dict(good))  # exact duplicate
    rows.append({**good, "imsi": "24001ABC"})  # malformed IMSI
    rows.append({**good, "imsi": "240011111111111", "cell_id": "240-01-404-1"})  # unknown cell
    rows.append({**good, "imsi": "240012222222222", "event_time": None})  # missing time
    rows.append({**good, "imsi": "240013333333333", "cell_id": "240-01-9-1"})  # temporary cell, not yet on air
    return {"duplicate": 1, "malformed imsi": 1, "unknown cell_id": 1, "missing event_time": 1,
            "cell not on air at event_time": 1}  # fmt: skip


def _add_semantic_dirt(rows: list[dict]) -> dict[str, int]:
    """Valid rows that cleaning must leave out of stays: a teleport and a same-second other cell."""
    in_visit = next(row for row in rows if row["cell_id"] == CELL_A)
    rows.append({**in_visit, "event_time": in_visit["event_time"] + dt.timedelta(seconds=60), "cell_id": HOME_MALMO})
    rows.append({**in_visit, "cell_id": CELL_A_SECTOR})
    return {"impossible_jump": 1, "same_second_other_cell": 1}


def _write_delivery(root: Path, day: dt.date, rows: list[dict], fmt: str) -> None:
    folder = root / "events" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(
        rows,
        schema={
            "event_time": pl.Datetime("us", "UTC"),
            "imsi": pl.String,
            "cell_id": pl.String,
            "event_type": pl.String,
            "tac": pl.String,
        },
    )
    if fmt == "parquet":
        frame.write_parquet(folder / "part-000.parquet")
        return
    text_frame = frame.with_columns(
        pl.col("event_time").dt.convert_time_zone("Europe/Stockholm").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
    )
    if fmt == "csv":
        text_frame.write_csv(folder / "part-000.csv")
    else:
        with gzip.open(folder / "part-000.csv.gz", "wb") as handle:
            text_frame.write_csv(handle)


def write_late_file(landing: Path, folder_day: dt.date, first_imsi: int = 7_000_000) -> Path:
    """12 people in zone A on the evening before `folder_day`, delivered late into that day's folder
    (then home in Helsingborg); `first_imsi` keeps them apart from other people of a test."""
    day = folder_day - dt.timedelta(days=1)
    lines = ["event_time,imsi,cell_id,event_type,tac"]
    for person in range(12):
        imsi = f"24001{first_imsi + person:010d}"
        start = dt.datetime.combine(day, dt.time(19, 0)) + dt.timedelta(minutes=3 * person)
        for step in range(12):
            when = start + dt.timedelta(minutes=6 * step)
            lines.append(f"{when.isoformat()}+02:00,{imsi},{CELL_A},data,35391800")
        lines.append(f"{(start + dt.timedelta(hours=2)).isoformat()}+02:00,{imsi},{HOME_HELSINGBORG},data,35391800")
    path = landing / "events" / f"date={folder_day.isoformat()}" / "late-001.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
