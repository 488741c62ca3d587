"""The four comparisons of published figures with the truth, each a plain function of data frames.

Relative errors are signed, `published / true - 1`; they are empty when the truth is 0. Suppressed
rows are counted, never compared: their counts are empty by design.
"""

from __future__ import annotations

import polars as pl

from crowd_platform.evaluate.load import EVENT_WIDE, KPI_KEY_PARTS, Published, Truth

TOLERANCE = 1e-9  # "within 10 %" includes exactly 10 %, which floating point may put a hair above

VISITOR_CLASSES = ("resident", "domestic_visitor", "international_visitor", "unknown")

# Pipeline KPI -> (truth metric, truth column). The pipeline counts countries and municipalities whose
# group has >= k (10) devices, i.e. subscriber devices: the truth's `*_k10` among subscribers.
KPI_TRUTH = {
    "visits": ("visits", "value"),
    "unique_visitors": ("unique_visitors", "value"),
    "international_share": ("international_share", "value"),
    "countries": ("countries_k10", "value_subscribers"),
    "municipalities": ("municipalities_k10", "value_subscribers"),
    "median_dwell_min": ("median_dwell_min", "value"),
    "peak_day": ("peak_day_visits", "value"),
}
# The KPIs that DESIGN section 4 asks for at least; the accuracy bar "each event KPI within 3 %" is held
# against these (the other KPIs are compared and their intervals' coverage reported, see summary).
HEADLINE_METRICS = frozenset(KPI_TRUTH)


def _rel_error(published: pl.Expr, true: pl.Expr) -> pl.Expr:
    return pl.when(true > 0).then(published / true - 1.0).otherwise(None)


def zone_days(published: Published, truth: Truth) -> pl.DataFrame:
    """One row per zone and day of the warehouse's days, published estimate vs the true visitors.

    status: `compared`; `suppressed` (published row withheld under k); `missing` (true visitors
    but no published row); `no_visitors` (no row and nobody true); `not_in_truth` (a row for a
    zone-day the truth does not know). Errors are filled for `compared` rows only.
    """
    true = truth.zone_daily.filter(pl.col("event_date").is_in(published.days)).select(
        "event_date",
        "zone_id",
        "is_expo_day",
        pl.col("visitors").alias("true_visitors"),
        pl.col("visitors_subscribers").alias("true_subscribers"),
        pl.col("oracle_rel_error").fill_nan(None),
    )
    pub = published.zone_daily.with_columns(pl.lit(True).alias("_published"))
    joined = true.join(pub, on=["event_date", "zone_id"], how="full", coalesce=True)
    status = (
        pl.when(pl.col("true_visitors").is_null())
        .then(pl.lit("not_in_truth"))
        .when(pl.col("_published").is_null() & (pl.col("true_visitors") > 0))
        .then(pl.lit("missing"))
        .when(pl.col("_published").is_null())
        .then(pl.lit("no_visitors"))
        .when(pl.col("suppressed"))
        .then(pl.lit("suppressed"))
        .otherwise(pl.lit("compared"))
    )
    out = joined.with_columns(status.alias("status")).with_columns(
        pl.col("visitors_est").cast(pl.Float64),
        pl.col("visitors_est_low").cast(pl.Float64),
        pl.col("visitors_est_high").cast(pl.Float64),
        pl.col("visitors").cast(pl.Int64),
    )
    compared = pl.col("status") == "compared"
    out = out.with_columns(
        pl.when(compared).then(_rel_error(pl.col("visitors_est"), pl.col("true_visitors"))).alias("rel_error_est"),
        pl.when(compared)
        .then(pl.col("true_visitors").is_between(pl.col("visitors_est_low"), pl.col("visitors_est_high")))
        .alias("interval_covers"),
        pl.when(compared).then(_rel_error(pl.col("visitors"), pl.col("true_subscribers"))).alias("rel_error_raw"),
        pl.when(compared).then(pl.col("oracle_rel_error")).alias("oracle_rel_error"),
    ).with_columns(
        pl.col("rel_error_est").abs().alias("abs_rel_error_est"),
        (pl.col("rel_error_est").abs() <= 0.10 + TOLERANCE).alias("within_10pct"),
    )
    return out.select(
        "event_date",
        "zone_id",
        "is_expo_day",
        "status",
        "true_visitors",
        "visitors_est",
        "visitors_est_low",
        "visitors_est_high",
        "rel_error_est",
        "abs_rel_error_est",
        "within_10pct",
        "interval_covers",
        "true_subscribers",
        "visitors",
        "rel_error_raw",
        "oracle_rel_error",
    ).sort("event_date", "zone_id")


def zones(zone_days_table: pl.DataFrame) -> pl.DataFrame:
    """Per zone over the window: how many zone-days were compared, and the medians of their errors."""
    compared = pl.col("status") == "compared"
    return (
        zone_days_table.group_by("zone_id")
        .agg(
            pl.col("true_visitors").sum().alias("true_visitors"),
            compared.sum().alias("compared"),
            (pl.col("status") == "suppressed").sum().alias("suppressed"),
            (pl.col("status") == "missing").sum().alias("missing"),
            pl.col("abs_rel_error_est").median().alias("median_abs_rel_error_est"),
            pl.col("oracle_rel_error").filter(compared).abs().median().alias("median_oracle_error"),
            pl.col("interval_covers").mean().alias("interval_coverage"),
            pl.col("rel_error_raw").abs().median().alias("median_abs_rel_error_raw"),
        )
        .sort("true_visitors", "zone_id", descending=[True, False])
    )


def kpis(published: Published, truth: Truth) -> pl.DataFrame:
    """Each published KPI against the truth's value; truth KPIs the pipeline has no counterpart for are listed
    as `not_published`, published KPIs without a truth as `not_in_truth`."""
    mapping = pl.DataFrame(
        {
            "metric": list(KPI_TRUTH),
            "truth_metric": [m for m, _ in KPI_TRUTH.values()],
            "truth_column": [c for _, c in KPI_TRUTH.values()],
        }
    )
    pub = published.event_kpis.join(mapping, on="metric", how="left").with_columns(
        pl.col("truth_metric").fill_null(pl.col("metric")), pl.col("truth_column").fill_null(pl.lit("value"))
    )
    true = truth.event_kpis.select(
        "event_id",
        pl.col("metric").alias("truth_metric"),
        *KPI_KEY_PARTS,
        pl.col("value").alias("_true_all"),
        pl.col("value_subscribers").alias("_true_subscribers"),
        pl.col("note").alias("true_note"),
    )
    joined = pub.join(true, on=["event_id", "truth_metric", *KPI_KEY_PARTS], how="full", coalesce=True)
    true_value = (
        pl.when(pl.col("truth_column") == "value_subscribers")
        .then(pl.col("_true_subscribers"))
        .otherwise(pl.col("_true_all"))
    )
    status = (
        pl.when(pl.col("metric").is_null())
        .then(pl.lit("not_published"))
        .when(pl.col("_true_all").is_null() & pl.col("_true_subscribers").is_null())
        .then(pl.lit("not_in_truth"))
        .when(pl.col("suppressed"))
        .then(pl.lit("suppressed"))
        .otherwise(pl.lit("compared"))
    )
    out = joined.with_columns(true_value.alias("true_value"), status.alias("status"))
    compared = pl.col("status") == "compared"
    # peak_day: the value is that day's visits; the dates are compared too (in `note`).
    peak_note = pl.when(pl.col("metric") == "peak_day").then(
        pl.format("published {}, true {}", pl.col("event_date").cast(pl.String), pl.col("true_note"))
    )
    out = out.with_columns(
        pl.when(compared).then(_rel_error(pl.col("value"), pl.col("true_value"))).alias("rel_error"),
        pl.when(compared & pl.col("low").is_not_null())
        .then(pl.col("true_value").is_between(pl.col("low"), pl.col("high")))
        .alias("interval_covers"),
        peak_note.alias("note"),
        # A headline KPI: one of DESIGN's list, event-wide or per zone (not a pair, category or zone's unique).
        (
            pl.col("metric").is_in(list(HEADLINE_METRICS))
            & (pl.col("other_zone_id") == EVENT_WIDE)
            & (pl.col("category") == EVENT_WIDE)
            & ((pl.col("metric") != "unique_visitors") | (pl.col("zone_id") == EVENT_WIDE))
        )
        .fill_null(False)
        .alias("headline"),
    ).with_columns(pl.col("rel_error").abs().alias("abs_rel_error"))
    return out.select(
        "event_id",
        "metric",  # empty for truth KPIs the pipeline does not publish
        *KPI_KEY_PARTS,
        "headline",
        "truth_metric",
        "truth_column",
        "status",
        "value",
        "low",
        "high",
        "true_value",
        "rel_error",
        "abs_rel_error",
        "interval_covers",
        "note",
    ).sort("event_id", "truth_metric", *KPI_KEY_PARTS, "metric", nulls_last=True)


def homes(published: Published, truth: Truth) -> pl.DataFrame:
    """Per domestic subscriber device with a true home that the warehouse knows on some day of its window:
    the home on the device's latest day, `right`, `wrong` or `unknown` (no home detected)."""
    domestic = truth.persons.filter(
        (pl.col("origin_country") == "SE")
        & (pl.col("person_class") != "machine")
        & pl.col("home_municipality").is_not_null()
    ).select("device_key", "person_class", pl.col("home_municipality").alias("true_home"))
    zone_visitors = published.device_classes.select("device_key", pl.lit(True).alias("is_zone_visitor"))
    out = (
        domestic.join(published.device_homes, on="device_key", how="inner")
        .join(zone_visitors, on="device_key", how="left")
        .with_columns(
            pl.col("is_zone_visitor").fill_null(False),
            pl.when(pl.col("home_municipality").is_null())
            .then(pl.lit("unknown"))
            .when(pl.col("home_municipality") == pl.col("true_home"))
            .then(pl.lit("right"))
            .otherwise(pl.lit("wrong"))
            .alias("outcome"),
        )
    )
    return out.select(
        "device_key", "person_class", "is_zone_visitor", "event_date", "true_home", "home_municipality", "outcome"
    ).sort("device_key")


def visitor_classes(published: Published, truth: Truth) -> pl.DataFrame:
    """Confusion matrix over the devices with a visit: rows the true class, columns the pipeline's class."""
    true = truth.persons.select("device_key", pl.col("visitor_class").fill_null("machine").alias("true_class"))
    devices = published.device_classes.join(true, on="device_key", how="left").with_columns(
        pl.col("true_class").fill_null("not_in_truth")
    )
    counts = devices.group_by("true_class", "visitor_class").len()
    columns = list(VISITOR_CLASSES) + sorted(set(counts["visitor_class"].to_list()) - set(VISITOR_CLASSES))
    rows = list(VISITOR_CLASSES[:3]) + sorted(set(counts["true_class"].to_list()) - set(VISITOR_CLASSES[:3]))
    lookup = {(t, p): n for t, p, n in counts.iter_rows()}
    data: dict[str, list[object]] = {"true_class": rows}
    for col in columns:
        data[col] = [lookup.get((row, col), 0) for row in rows]
    data["total"] = [sum(lookup.get((row, col), 0) for col in columns) for row in rows]
    data["share_right"] = [
        (lookup.get((row, row), 0) / total if total else None) for row, total in zip(rows, data["total"], strict=True)
    ]
    schema = {"true_class": pl.String, **dict.fromkeys(columns, pl.Int64), "total": pl.Int64, "share_right": pl.Float64}
    return pl.DataFrame(data, schema=schema)


__all__ = [
    "EVENT_WIDE",
    "HEADLINE_METRICS",
    "KPI_TRUTH",
    "VISITOR_CLASSES",
    "homes",
    "kpis",
    "visitor_classes",
    "zone_days",
    "zones",
]
