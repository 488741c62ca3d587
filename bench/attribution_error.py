"""Zone attribution error measured in a validation world: the defaults of `attribution_log_sd_*`.

    python bench/attribution_error.py --evaluation DIR --warehouse W [--min-subscribers 10]

`--evaluation` is the folder `crowd-platform evaluate --out DIR` wrote for a world *other than the one
the defaults will be judged on* (a different seed): its `zone_days.csv` holds, per zone-day, the raw
visitors (distinct subscriber devices the pipeline attributed to the zone) and the truth's subscriber
visitors. Their log ratio is the attribution error alone (no extrapolation, no sampling of who is a
subscriber). For areas and for venues (reference.zones: a venue has a parent zone) this prints the
log-scale sd such that exp(+-z * sd) around the raw count holds the truth on 95 % of the zone-days,
i.e. the 95th percentile of |log ratio| divided by z, and the Methodology overrides to use them.
Zone-days with fewer than `--min-subscribers` true subscriber visitors are left out (their error is
mostly chance).

The event's two means over persons (`days_attended_mean`, `visits_per_visitor`; `kpis.csv`) carry the
attribution error too, since the people it adds or misses come on more or fewer days than the others.
One event gives one log ratio (published / true) per mean, too few for a percentile: their sd is taken
as the root mean square of those log ratios (the estimate of a zero-centred normal's sd), printed as
`attribution_log_sd_mean`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import polars as pl

from crowd_platform.methodology import Methodology


def attribution_log_sd(zone_days: pl.DataFrame, parents: dict[str, str | None], min_subscribers: int) -> pl.DataFrame:
    """Per zone kind: zone-days used, the median and 95th percentile of |log(raw / true)|, and the sd."""
    z = Methodology().confidence_z
    return (
        zone_days.filter(
            (pl.col("status") == "compared")
            & (pl.col("true_subscribers") >= min_subscribers)
            & (pl.col("visitors") > 0)
        )
        .with_columns(
            kind=pl.col("zone_id").replace_strict(
                {zone: "venue" if parent else "area" for zone, parent in parents.items()}
            ),
            abs_log_error=(pl.col("visitors") / pl.col("true_subscribers")).log().abs(),
        )
        .group_by("kind")
        .agg(
            zone_days=pl.len(),
            median_abs_log_error=pl.col("abs_log_error").median(),
            p95_abs_log_error=pl.col("abs_log_error").quantile(0.95, interpolation="linear"),
        )
        .with_columns(log_sd=(pl.col("p95_abs_log_error") / z).round(2))
        .sort("kind")
    )


MEANS = ("days_attended_mean", "visits_per_visitor")


def mean_log_sd(kpis: pl.DataFrame) -> pl.DataFrame:
    """The means' log ratios (published / true) and their root mean square, the sd."""
    means = kpis.filter(pl.col("metric").is_in(MEANS) & (pl.col("status") == "compared")).select(
        "metric", "value", "true_value", log_error=(pl.col("value") / pl.col("true_value")).log()
    )
    return means.with_columns(log_sd=(pl.col("log_error") ** 2).mean().sqrt().round(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluation", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--min-subscribers", type=int, default=10)
    args = parser.parse_args()
    zone_days = pl.read_csv(args.evaluation / "zone_days.csv")
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        parents = dict(con.execute("SELECT zone_id, parent_zone_id FROM reference.zones").fetchall())
    table = attribution_log_sd(zone_days, parents, args.min_subscribers)
    with pl.Config(tbl_rows=10, tbl_cols=10):
        print(table)
    sd = dict(zip(table["kind"], table["log_sd"], strict=True))
    means = mean_log_sd(pl.read_csv(args.evaluation / "kpis.csv"))
    print(means)
    mean_sd = means["log_sd"][0] if means.height else None
    print(
        f"methodology: attribution_log_sd_area={sd.get('area')} attribution_log_sd_venue={sd.get('venue')} "
        f"attribution_log_sd_mean={mean_sd}"
    )


if __name__ == "__main__":
    main()
