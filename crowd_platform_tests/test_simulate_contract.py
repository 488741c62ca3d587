"""The simulator writes exactly the landing contract (DESIGN section 3) and is deterministic."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import tomllib
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crowd_platform.simulate import WorldConfig, simulate_world

START, END = dt.date(2022, 6, 14), dt.date(2022, 6, 15)  # 15 June holds the truncated file
EVENT_TYPES = {"attach", "detach", "call", "sms", "data", "handover", "location_update"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("world")
    summary = simulate_world(
        root / "landing", root / "truth", scale=0.002, seed=7, start=START, end=END, progress=False
    )
    return root / "landing", root / "truth", summary


def _read_events(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False)


def test_summary(world):
    _, _, s = world
    assert s["days"] == 2
    assert s["events_total"] == sum(s["events_per_day"].values()) > 0
    assert set(s["events_per_day"]) == {"2022-06-14", "2022-06-15", "2022-06-16"}
    assert s["truncated_file"] == "events/date=2022-06-15/part-00000.parquet"


def test_event_files(world):
    landing, _, _ = world
    # Beside the event files, each folder holds the delivery manifest (test_manifest.py checks it).
    files = sorted(f for f in (landing / "events").glob("date=*/*") if f.name != "manifest.json")
    assert files
    for f in files:
        assert re.fullmatch(r"date=\d{4}-\d{2}-\d{2}", f.parent.name)
        assert f.name.endswith((".parquet", ".csv", ".csv.gz"))
    good = [f for f in files if f.suffix == ".parquet" and "2022-06-15" not in str(f)]
    for f in good:
        schema = pq.read_schema(f)
        assert schema.names == ["event_time", "imsi", "cell_id", "event_type", "tac"]
        assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
        df = pl.read_parquet(f)
        assert set(df["event_type"].unique()) <= EVENT_TYPES
        ok = df["imsi"].str.contains(r"^\d{14,15}$")
        assert ok.mean() > 0.99  # the rest is injected dirt
        tac = df["tac"].drop_nulls()
        assert tac.str.contains(r"^\d{8}$").all()
        # mostly that local date, some late arrivals from the day before
        local = df["event_time"].drop_nulls().dt.convert_time_zone("Europe/Stockholm").dt.date()
        day = dt.date.fromisoformat(f.parent.name[5:])
        share_today = (local == day).mean()
        if START < day <= END:
            assert 0.95 < share_today < 1.0  # the first day of a run has no late rows
        assert set(local.unique()) <= {day, day - dt.timedelta(1)}


def test_truncated_file_is_broken(world):
    landing, _, _ = world
    with pytest.raises((pa.ArrowInvalid, OSError)):
        pq.read_table(landing / "events/date=2022-06-15/part-00000.parquet")


def test_reference_files(world):
    landing, _, _ = world
    ref = landing / "reference"
    cells = pl.read_csv(ref / "cells.csv", infer_schema=False)
    assert cells.columns == [
        "cell_id",
        "latitude",
        "longitude",
        "azimuth_deg",
        "beamwidth_deg",
        "range_m",
        "technology",
        "valid_from",
        "valid_to",
    ]
    assert cells["cell_id"].str.contains(r"^240-01-\d+-\d$").all()
    assert cells["cell_id"].n_unique() == cells.height
    temp = cells.filter(pl.col("valid_to").is_not_null())
    assert temp.height > 0 and set(temp["valid_from"]) == {"2022-05-30"}
    assert set(temp["valid_to"]) == {"2022-07-03"}
    zones = json.loads((ref / "zones.geojson").read_text())
    props = {f["properties"]["zone_id"]: f["properties"] for f in zones["features"]}
    assert {"city_slottshagen", "oceanhamnen", "drottninghog", "magasin_405"} <= set(props)
    assert props["magasin_405"]["parent_zone_id"] == "oceanhamnen"
    assert props["oceanhamnen"]["parent_zone_id"] is None
    ev = tomllib.loads((ref / "events.toml").read_text())["events"][0]
    assert ev["id"] == "h22" and ev["start"] == dt.date(2022, 5, 30) and ev["end"] == dt.date(2022, 7, 3)
    assert ev["host_municipality"] == "1283" and len(ev["main_zones"]) == 3
    popu = pl.read_csv(ref / "population.csv", schema_overrides={"municipality_code": pl.String})
    assert popu.height == 290
    # The register describes the synthetic country: Helsingborg's ~149,000 residents at scale 0.002.
    assert 280 < popu.filter(pl.col("municipality_code") == "1283")["population"][0] < 320
    shares = pl.read_csv(ref / "roaming_shares.csv")
    assert shares.height >= 45 and shares["share"].is_between(0, 1).all()


def test_csv_delivery_format(tmp_path: Path):
    # 2022-06-17 is day-of-year 168 = 7 * 24: its first part is gzipped CSV
    d = dt.date(2022, 6, 17)
    simulate_world(tmp_path / "l", tmp_path / "t", scale=0.001, seed=3, start=d, end=d, progress=False)
    f = tmp_path / "l" / "events" / f"date={d}" / "part-00000.csv.gz"
    with gzip.open(f, "rt") as fh:
        header = fh.readline().strip()
        row = fh.readline().strip()
    assert header == "event_time,imsi,cell_id,event_type,tac"
    assert re.match(r"^2022-06-1[67]T\d{2}:\d{2}:\d{2}\+02:00,", row)


def test_truth_files(world):
    _, truth, _ = world
    for name in (
        "persons",
        "zone_daily",
        "origin_country_daily",
        "home_municipality_daily",
        "market_shares_municipality",
        "market_shares_country",
        "event_kpis",
        "dirt",
    ):
        assert (truth / f"{name}.parquet").exists(), name
    manifest = json.loads((truth / "manifest.json").read_text())
    assert manifest["summary"]["seed"] == 7
    persons = pl.read_parquet(truth / "persons.parquet")
    assert {"imsi", "is_subscriber", "person_class", "visitor_class", "home_municipality", "origin_country"} <= set(
        persons.columns
    )
    visits = pl.read_parquet(truth / "visits")
    assert (visits["dwell_s"] >= 1200).all()


def test_deterministic(tmp_path: Path):
    cfg = WorldConfig(truncated_file=False)
    d = dt.date(2022, 6, 1)
    for run in ("a", "b"):
        simulate_world(
            tmp_path / run / "l", tmp_path / run / "t", scale=0.001, seed=11, start=d, end=d, config=cfg, progress=False
        )
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        if rel.name == "manifest.json":
            continue  # holds the run time
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
