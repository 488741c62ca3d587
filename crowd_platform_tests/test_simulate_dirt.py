"""Dirt is injected at the documented rates and counted exactly in the truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from crowd_platform.simulate import WorldConfig, simulate_world

START, END = dt.date(2022, 6, 1), dt.date(2022, 6, 2)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("dirty")
    # higher rates than the defaults so that a tiny world has enough of each kind
    cfg = WorldConfig(
        dup_exact_rate=0.01,
        dup_other_cell_rate=0.01,
        teleport_rate=0.002,
        malformed_imsi_rate=0.002,
        unknown_cell_rate=0.002,
        missing_time_rate=0.002,
        late_delivery_rate=0.02,
        truncated_file=False,
    )
    simulate_world(
        root / "landing", root / "truth", scale=0.002, seed=5, start=START, end=END, config=cfg, progress=False
    )
    return root / "landing", root / "truth"


def _events(landing: Path) -> pl.DataFrame:
    frames = []
    for f in sorted((landing / "events").glob("date=*/part-*")):  # not the manifest
        if f.suffix == ".parquet":
            df = pl.read_parquet(f)
        else:
            df = pl.read_csv(f, infer_schema=False).with_columns(
                pl.col("event_time")
                .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False)
                .dt.convert_time_zone("UTC")
                .dt.cast_time_unit("us")
            )
        frames.append(df.with_columns(pl.lit(f.parent.name[5:]).alias("folder")))
    return pl.concat(frames, how="vertical_relaxed")


def test_dirt_counts_match_truth(dirty):
    landing, truth = dirty
    ev = _events(landing)
    dirt = pl.read_parquet(truth / "dirt.parquet")
    tot = {c: int(dirt[c].sum()) for c in dirt.columns if c != "event_date"}
    assert ev.height == tot["clean_rows"] + tot["dup_exact"] + tot["dup_other_cell"]
    assert (~ev["imsi"].fill_null("").str.contains(r"^\d{14,15}$")).sum() == tot["malformed_imsi"]
    cells = set(pl.read_csv(landing / "reference/cells.csv", infer_schema=False)["cell_id"])
    assert (~ev["cell_id"].fill_null("").is_in(list(cells))).sum() == tot["unknown_cell"]
    assert ev["event_time"].null_count() == tot["missing_time"]
    n_dup = ev.height - ev.unique().height
    assert tot["dup_exact"] * 0.9 <= n_dup <= tot["dup_exact"] * 1.1 + 5
    for k in ("dup_exact", "dup_other_cell", "teleport", "malformed_imsi", "unknown_cell", "missing_time", "late"):
        assert tot[k] > 0, k


def test_late_rows_land_next_day(dirty):
    landing, truth = dirty
    ev = _events(landing).drop_nulls("event_time")
    local = ev["event_time"].dt.convert_time_zone("Europe/Stockholm").dt.date().cast(pl.String)
    late = ev.filter(local != ev["folder"])
    dirt = pl.read_parquet(truth / "dirt.parquet")
    assert late.height == int(dirt["late"].sum())
    assert set(late["folder"]) == {"2022-06-02", "2022-06-03"}


def test_same_second_other_cell(dirty):
    landing, _ = dirty
    ev = _events(landing).drop_nulls("event_time")
    pairs = ev.group_by("imsi", "event_time").agg(pl.col("cell_id").n_unique().alias("n"))
    assert (pairs["n"] > 1).sum() > 0


def test_machines_and_tacs(dirty):
    _, truth = dirty
    persons = pl.read_parquet(truth / "persons.parquet")
    m = persons.filter(pl.col("person_class") == "machine")
    assert m.height > 0
    assert m["tac"].null_count() > 0  # some without TAC: only behaviour tells
    assert m["tac"].drop_nulls().str.starts_with("86").any()
