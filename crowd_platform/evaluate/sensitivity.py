"""How much a definition moves the numbers: the headline KPIs and the accuracy under variants.

Each variant rebuilds core, marts and the event layer from the same staged events in a copy of
the warehouse, with some methodology parameters changed, and is evaluated against the truth.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from crowd_platform.methodology import Methodology

# name -> parameter overrides (docs/methodology.md explains each parameter)
VARIANTS: dict[str, dict[str, float | int]] = {
    "default": {},
    "visit 15 min": {"visit_min_min": 15},
    "visit 30 min": {"visit_min_min": 30},
    "stay gap 45 min": {"stay_max_gap_min": 45},
    "stay gap 120 min": {"stay_max_gap_min": 120},
    "home window 14 nights": {"home_window_nights": 14, "home_min_nights": 4},
    "zone weight 0.3": {"zone_min_weight": 0.3},
    "no visit bridge": {"visit_bridge_max_min": 0},
}

SUMMARY_FIGURES = (
    "median_abs_rel_error_est",
    "median_abs_rel_error_raw_vs_subscribers",
    "interval_coverage",
    "home_accuracy",
)


@contextmanager
def _warehouse_env(path: Path):
    previous = os.environ.get("CROWD_WAREHOUSE")
    os.environ["CROWD_WAREHOUSE"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CROWD_WAREHOUSE", None)
        else:
            os.environ["CROWD_WAREHOUSE"] = previous


def _headline(kpis: pl.DataFrame, column: str) -> dict:
    """Total and main-zone visits and unique visitors, and the median dwell, from the evaluation's KPI table."""
    row = {}
    for kpi in kpis.iter_rows(named=True):
        zone = kpi["zone_id"] or ""
        if kpi["metric"] in ("visits", "unique_visitors") and zone in ("", *MAIN_ZONES):
            row[f"{kpi['metric']} {zone or 'total'}"] = kpi[column]
        elif kpi["metric"] == "median_dwell_min" and kpi[column] is not None:
            row["median_dwell_min"] = round(kpi[column], 1)
    return row


def run_variant(
    warehouse: Path, truth_dir: Path, key: bytes, first: dt.date, last: dt.date, overrides: Mapping, workdir: Path
) -> tuple[dict, dict]:
    """The variant's accuracy figures and headline KPIs, and the truth's headline KPIs."""
    from crowd_platform.evaluate import evaluate
    from crowd_platform.runner import materialize

    copy = workdir / "variant.duckdb"
    shutil.copy(warehouse, copy)
    with _warehouse_env(copy):
        materialize(first, last, Methodology(**overrides), quiet=True, progress=lambda _: None, staging=False)
    result = evaluate(copy, truth_dir, key)
    copy.unlink()
    row: dict = {figure: result.summary.get(figure) for figure in SUMMARY_FIGURES}
    row.update(_headline(result.tables["kpis"], "value"))
    return row, _headline(result.tables["kpis"], "true_value")


MAIN_ZONES = ("city_slottshagen", "oceanhamnen", "drottninghog")


def sensitivity(
    warehouse: Path,
    truth_dir: Path,
    key: bytes,
    first: dt.date,
    last: dt.date,
    workdir: Path,
    variants: Mapping[str, Mapping] = VARIANTS,
) -> pl.DataFrame:
    """One row per variant: the headline KPIs as published and the accuracy figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    rows, truth = [], {}
    for name, overrides in variants.items():
        row, truth = run_variant(warehouse, truth_dir, key, first, last, overrides, workdir)
        rows.append({"variant": name, **row})
    rows.append({"variant": "truth", **truth})
    return pl.DataFrame(rows)
