"""Compare what the pipeline published with the simulator's truth (docs/evaluation.md).

result = evaluate(warehouse, truth_dir, key)
print(result.to_markdown()); result.write(folder)
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from crowd_platform.evaluate import compare
from crowd_platform.evaluate.load import Published, Truth, load_published, load_truth
from crowd_platform.evaluate.result import EvaluationResult
from crowd_platform.evaluate.summary import bars, summarise


def home_outcomes(homes: pl.DataFrame) -> pl.DataFrame:
    return (
        homes.group_by("is_zone_visitor", "outcome")
        .len("devices")
        .sort("is_zone_visitor", "outcome", descending=[True, False])
    )


def evaluate_frames(published: Published, truth: Truth) -> EvaluationResult:
    """The evaluation of already loaded data (the tests build both by hand)."""
    homes = compare.homes(published, truth)
    zone_days = compare.zone_days(published, truth)
    tables = {
        "zones": compare.zones(zone_days),
        "zone_days": zone_days,
        "kpis": compare.kpis(published, truth),
        "home_outcomes": home_outcomes(homes),
        "homes": homes,
        "visitor_classes": compare.visitor_classes(published, truth),
    }
    summary = summarise(tables, published, truth)
    notes = []
    if summary["kpi_window_complete"] != "yes":
        notes.append(
            "The warehouse does not hold every expo day, while the truth's event KPIs cover all 35: the KPI "
            "comparison is not like for like."
        )
    return EvaluationResult({"bars": bars(summary), **tables}, summary, notes)


def evaluate(warehouse: Path, truth_dir: Path, key: bytes) -> EvaluationResult:
    """Evaluate the warehouse's published tables against the truth folder, on the days of marts.zone_daily."""
    return evaluate_frames(load_published(Path(warehouse)), load_truth(Path(truth_dir), key))


__all__ = ["EvaluationResult", "evaluate", "evaluate_frames"]
