"""Headline figures from the comparison tables, and the bars of DESIGN section 7 they are held against."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import polars as pl

from crowd_platform.evaluate.compare import TOLERANCE
from crowd_platform.evaluate.load import Published, Truth

Figure = float | int | str
EXPO_DAYS = 35  # 2022-05-30 .. 2022-07-03: the truth's event KPIs cover all of them
MIN_SCALE_FOR_BARS = 0.1  # DESIGN section 7 measures accuracy at scale >= 0.1


def _median(values: pl.Series) -> float:
    values = values.drop_nulls()
    return float(values.median()) if values.len() else math.nan  # type: ignore[arg-type]


def _share(flags: pl.Series) -> float:
    flags = flags.drop_nulls()
    return float(flags.mean()) if flags.len() else math.nan  # type: ignore[arg-type]


def _ratio(numerator: float, denominator: float) -> float:
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


def summarise(tables: dict[str, pl.DataFrame], published: Published, truth: Truth) -> dict[str, Figure]:
    zd = tables["zone_days"]
    compared = zd.filter(pl.col("status") == "compared")
    big = compared.filter(pl.col("true_visitors") >= 2000)
    mid = compared.filter(pl.col("true_visitors") >= 500)
    median_est = _median(compared["abs_rel_error_est"])
    median_oracle = _median(compared["oracle_rel_error"].abs())

    kp = tables["kpis"]
    kpi_compared = kp.filter(pl.col("status") == "compared")
    kpi_errors = kpi_compared.filter(pl.col("headline").fill_null(False))["abs_rel_error"].drop_nulls()
    kpi_intervals = kpi_compared["interval_covers"].drop_nulls()

    hm = tables["homes"]
    detected = hm.filter(pl.col("outcome") != "unknown")
    visitors_detected = detected.filter(pl.col("is_zone_visitor"))

    vc = tables["visitor_classes"]
    diagonal = sum(int(row[row["true_class"]]) for row in vc.iter_rows(named=True) if row["true_class"] in vc.columns)
    classified = int(vc["total"].sum()) if vc.height else 0

    expo_days = [d for d in published.days if dt.date(2022, 5, 30) <= d <= dt.date(2022, 7, 3)]
    world = truth.manifest.get("summary", {})
    return {
        "scale": float(world.get("scale", math.nan)),
        "seed": int(world.get("seed", -1)),
        "days": len(published.days),
        "first_day": published.days[0].isoformat() if published.days else "",
        "last_day": published.days[-1].isoformat() if published.days else "",
        "zone_days_compared": compared.height,
        "suppressed_zone_days": zd.filter(pl.col("status") == "suppressed").height,
        "missing_zone_days": zd.filter(pl.col("status") == "missing").height,
        "not_in_truth_zone_days": zd.filter(pl.col("status") == "not_in_truth").height,
        "median_abs_rel_error_est": median_est,
        "zone_days_ge_2000": big.height,
        "share_within_10pct_ge_2000": _share(big["within_10pct"]),
        "zone_days_ge_500": mid.height,
        "share_within_10pct_ge_500": _share(mid["within_10pct"]),
        "median_oracle_error": median_oracle,
        "ratio_to_oracle": _ratio(median_est, median_oracle),
        "interval_coverage": _share(compared["interval_covers"]),
        "median_abs_rel_error_raw_vs_subscribers": _median(compared["rel_error_raw"].abs()),
        "share_raw_within_5pct": _share(compared["rel_error_raw"].abs() <= 0.05 + TOLERANCE),
        "kpis_compared": kpi_compared.height,
        "kpis_suppressed": kp.filter(pl.col("status") == "suppressed").height,
        "kpi_max_abs_rel_error": float(kpi_errors.max()) if kpi_errors.len() else math.nan,  # type: ignore[arg-type]
        "kpi_median_abs_rel_error": _median(kpi_errors),
        "kpis_with_interval": kpi_intervals.len(),
        "kpi_interval_coverage": _share(kpi_intervals),
        "kpi_window_complete": "yes" if len(expo_days) == EXPO_DAYS else f"no ({len(expo_days)} of {EXPO_DAYS})",
        "homes_evaluated": hm.height,
        "homes_detected": detected.height,
        "home_accuracy": _share(detected["outcome"] == "right"),
        "home_accuracy_all": _share(hm["outcome"] == "right"),
        "home_accuracy_zone_visitors": _share(visitors_detected["outcome"] == "right"),
        "visitor_class_devices": classified,
        "visitor_class_accuracy": diagonal / classified if classified else math.nan,
    }


Bar = tuple[str, str, str, Callable[[float], bool]]

# (what DESIGN section 7 asks, the summary figure, the bar as text, the test of the figure)
BARS: list[Bar] = [
    ("median zone-day error of visitors_est", "median_abs_rel_error_est", "< 0.05", lambda v: v < 0.05 - TOLERANCE),
    (
        "every zone-day with >= 2,000 true visitors within 10 %",
        "share_within_10pct_ge_2000",
        "= 1.0",
        lambda v: v == 1.0,
    ),
    ("error no more than 1.5 x the oracle's (medians)", "ratio_to_oracle", "<= 1.5", lambda v: v <= 1.5 + TOLERANCE),
    (
        "95 % intervals cover the truth on about 95 % of zone-days",
        "interval_coverage",
        "0.90 .. 1.00",
        lambda v: v >= 0.90 - TOLERANCE,
    ),
    (
        "raw visitors within 5 % of the true subscriber count (median)",
        "median_abs_rel_error_raw_vs_subscribers",
        "<= 0.05",
        lambda v: v <= 0.05 + TOLERANCE,
    ),
    ("each headline event KPI within 3 %", "kpi_max_abs_rel_error", "<= 0.03", lambda v: v <= 0.03 + TOLERANCE),
    (
        "home municipality right for >= 90 % of domestic visitors with a detected home",
        "home_accuracy_zone_visitors",
        ">= 0.90",
        lambda v: v >= 0.90 - TOLERANCE,
    ),
]


def bars(summary: dict[str, Figure]) -> pl.DataFrame:
    """Each accuracy bar of DESIGN section 7: the figure, the bar, and pass / fail (n/a when not measurable)."""
    rows = []
    for bar, name, threshold, test in BARS:
        value = summary.get(name, math.nan)
        figure = float(value) if isinstance(value, int | float) else math.nan
        result = "n/a" if math.isnan(figure) else ("pass" if test(figure) else "fail")
        rows.append((bar, name, figure, threshold, result))
    return pl.DataFrame(
        rows,
        schema={
            "bar": pl.String,
            "figure": pl.String,
            "value": pl.Float64,
            "threshold": pl.String,
            "result": pl.String,
        },
        orient="row",
    )
