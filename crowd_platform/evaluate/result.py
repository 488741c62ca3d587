"""The evaluation result: named tables, headline figures, a Markdown report and CSV files."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crowd_platform.evaluate.summary import MIN_SCALE_FOR_BARS, Figure

MARKDOWN_MAX_ROWS = 60  # the CSV files hold every row; the report shows the head of long tables

TABLE_NOTES = {
    "bars": "The accuracy bars of DESIGN section 7 (docs/evaluation.md defines each figure).",
    "zones": "Per zone over the window: zone-days by status and the medians of the errors of the compared ones.",
    "zone_days": "Rows with true visitors or a published row (the CSV also has the empty zone-days). "
    "Published `visitors_est` vs the true visitors (everybody), raw `visitors` vs the true subscriber "
    "visitors, and the oracle's error; errors are `published / true - 1`, filled for `compared` rows only.",
    "kpis": "Each event KPI vs the truth's `event_kpis.parquet` (`truth_metric`, `truth_column`); `headline` marks "
    "DESIGN's list, which the 3 % bar is held against; `interval_covers` whether the 95 % interval holds the truth.",
    "home_outcomes": "Home municipality on each device's latest day in the window, by outcome.",
    "homes": "Per domestic subscriber device with a true home that `core.device_homes` knows.",
    "visitor_classes": "Devices with a visit: true `visitor_class` (rows) vs the pipeline's most frequent class "
    "(columns).",
}


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:.4g}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).replace("|", "\\|")


def markdown_table(frame: pl.DataFrame, max_rows: int | None = MARKDOWN_MAX_ROWS) -> str:
    shown = frame if max_rows is None else frame.head(max_rows)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.iter_rows()]
    if shown.height < frame.height:
        lines.append(f"\n({shown.height} of {frame.height} rows shown; every row is in the CSV file.)")
    return "\n".join(lines)


@dataclass
class EvaluationResult:
    tables: dict[str, pl.DataFrame]
    summary: dict[str, Figure]
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        parts = ["# Evaluation against the simulator's truth", ""]
        scale = self.summary.get("scale", math.nan)
        if isinstance(scale, float) and not math.isnan(scale) and scale < MIN_SCALE_FOR_BARS:
            parts += [
                f"The world was simulated at scale {scale:g}; DESIGN section 7 sets its accuracy bars at "
                f"scale >= {MIN_SCALE_FOR_BARS:g}, where sampling noise is smaller. The verdicts below are "
                "indicative.",
                "",
            ]
        parts += [f"- {note}" for note in self.notes] + ([""] if self.notes else [])
        parts += ["## Summary", "", "| figure | value |", "|---|---|"]
        parts += [f"| {name} | {_cell(value)} |" for name, value in self.summary.items()]
        for name, frame in self.tables.items():
            parts += ["", f"## {name}", ""]
            if name in TABLE_NOTES:
                parts += [TABLE_NOTES[name], ""]
            if name == "zone_days":  # the many zone-days with nobody and nothing published are noise here
                frame = frame.filter(pl.col("status") != "no_visitors")
            parts.append(markdown_table(frame, None if name in ("bars", "zones") else MARKDOWN_MAX_ROWS))
        return "\n".join(parts) + "\n"

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables.items():
            frame.write_csv(folder / f"{name}.csv")
        path = folder / "evaluation.md"
        path.write_text(self.to_markdown(), encoding="utf-8")
        return path
