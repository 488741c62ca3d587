"""The truth is internally consistent and the world behaves as documented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crowd_platform.simulate import WorldConfig, simulate_world
from crowd_platform.simulate.schedules import base_plan, chain, day_info
from crowd_platform.simulate.truth import visits_of, zone_intervals

START, END = dt.date(2022, 6, 3), dt.date(2022, 6, 5)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("truthworld")
    simulate_world(
        root / "landing",
        root / "truth",
        scale=0.004,
        seed=9,
        start=START,
        end=END,
        config=WorldConfig(truncated_file=False),
        progress=False,
    )
    return root / "landing", root / "truth"


def test_visits_match_zone_daily(world):
    _, truth = world
    visits = pl.read_parquet(truth / "visits")
    zd = pl.read_parquet(truth / "zone_daily.parquet")
    counts = visits.group_by("event_date", "zone_id").agg(pl.len().alias("n"))
    j = zd.join(counts, on=["event_date", "zone_id"], how="left").with_columns(pl.col("n").fill_null(0))
    assert (j["visitors"] == j["n"]).all()
    assert visits.select("event_date", "person_id", "zone_id").is_unique().all()
    assert (visits["dwell_s"] >= 1200).all()


def test_venue_visit_implies_area_visit(world):
    _, truth = world
    visits = pl.read_parquet(truth / "visits")
    parent = {
        "magasin_405": "oceanhamnen",
        "havoteket": "oceanhamnen",
        "helsingborgsrummet": "city_slottshagen",
        "the_sounds": "city_slottshagen",
        "lagenheten_1972": "drottninghog",
    }
    v = visits.filter(pl.col("zone_id").is_in(list(parent))).with_columns(
        pl.col("zone_id").replace_strict(parent).alias("area")
    )
    areas = visits.select("event_date", "person_id", pl.col("zone_id").alias("area"))
    assert v.join(areas, on=["event_date", "person_id", "area"], how="anti").height == 0


def test_truth_near_targets(world):
    _, truth = world
    zd = pl.read_parquet(truth / "zone_daily.parquet").filter(
        pl.col("zone_id").is_in(["city_slottshagen", "oceanhamnen"])
    )
    ratio = zd["visitors"].sum() / zd["target"].sum()
    assert 0.85 < ratio < 1.15


def test_person_classes(world):
    _, truth = world
    p = pl.read_parquet(truth / "persons.parquet")
    res = p.filter(pl.col("person_class") == "resident")
    assert (res["home_municipality"] == "1283").all() and (res["visitor_class"] == "resident").all()
    intl = p.filter(pl.col("person_class") == "international_visitor")
    assert intl["home_municipality"].null_count() == intl.height
    assert (intl["origin_country"] != "SE").all()
    sub = p.filter(pl.col("is_subscriber") & (pl.col("origin_country") == "SE") & (pl.col("person_class") != "machine"))
    assert sub["imsi"].str.starts_with("24001").all()
    share = p.filter(pl.col("origin_country") == "SE")["is_subscriber"].mean()
    assert 0.33 < share < 0.47


def test_night_events_for_home_detection(world):
    landing, truth = world
    p = pl.read_parquet(truth / "persons.parquet").filter(
        pl.col("is_subscriber") & pl.col("person_class").is_in(["resident", "background"])
    )
    ev = pl.read_parquet(landing / "events/date=2022-06-04/part-00000.parquet").drop_nulls("event_time")
    local = ev["event_time"].dt.convert_time_zone("Europe/Stockholm")
    night = ev.filter((local.dt.hour() >= 22) | (local.dt.hour() < 6))
    seen = p.join(night.select("imsi").unique(), on="imsi", how="semi").height / p.height
    assert seen > 0.7  # most domestic subscribers are seen at night


def test_midpoint_rule_joins_stops_in_one_area():
    from crowd_platform.simulate.geography import build_geography
    from crowd_platform.simulate.population import build_population

    cfg = WorldConfig()
    geo = build_geography(1, cfg.expo_start, cfg.expo_end)
    pop = build_population(cfg, geo, 0.001, 1)
    plan = base_plan(cfg, geo, pop, day_info(cfg, dt.date(2022, 6, 4)), np.random.default_rng(0))
    stops = chain(plan, geo)
    # every row's stops are in time order and cover the whole day
    first = np.r_[True, stops.row[1:] != stops.row[:-1]]
    last = np.r_[stops.row[1:] != stops.row[:-1], True]
    assert (stops.arr[first] == 0).all() and (stops.dep[last] == 86_400).all()
    assert (stops.dep >= stops.arr).all()
    iv = zone_intervals(stops, plan, geo)
    assert (iv["end_s"] > iv["start_s"]).all()
    assert visits_of(iv).select("person", "zone").is_unique().all()
