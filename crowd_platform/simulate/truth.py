"""Ground truth: who was in which zone when, visits, daily aggregates and the event's KPIs.

Presence is derived from the day's stops: a person is in a zone while at a place inside it;
travel between two places counts half to the zone of each end (the midpoint rule), so that
consecutive stops in the same area join into one continuous presence. Intervals are cut at
local midnight (every day is simulated from 00:00 to 24:00), so a visit belongs to one day.
A *visit* is a person-zone-day with a continuous presence of at least 20 minutes.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .geography import Geography
from .schedules import Plan, Stops
from .zones import AREAS, ZONE_IDS

VISIT_MIN_S = 20 * 60


def zone_intervals(stops: Stops, plan: Plan, geo: Geography) -> pl.DataFrame:
    """Merged presence intervals: person, zone (index into ZONE_IDS), start_s, end_s."""
    r = stops.row
    n = len(r)
    if n == 0:
        return pl.DataFrame(schema={"person": pl.Int64, "zone": pl.Int8, "start_s": pl.Int32, "end_s": pl.Int32})
    same_prev = np.r_[False, r[1:] == r[:-1]]
    same_next = np.r_[r[1:] == r[:-1], False]
    prev_dep = np.r_[0, stops.dep[:-1]]
    next_arr = np.r_[stops.arr[1:], 0]
    s = np.where(same_prev, (prev_dep + stops.arr) // 2, stops.arr)
    e = np.where(same_next, (stops.dep + next_arr) // 2, stops.dep)
    s = np.maximum(s, plan.on[r])
    e = np.minimum(e, plan.off[r])
    area = geo.place_area[stops.place]
    venue = geo.place_venue[stops.place]
    keep_a = (area >= 0) & (e > s)
    keep_v = (venue >= 0) & (e > s)
    person = plan.person[r]
    df = pl.DataFrame(
        {
            "person": np.concatenate([person[keep_a], person[keep_v]]),
            "zone": np.concatenate([area[keep_a], venue[keep_v] + len(AREAS)]).astype(np.int8),
            "start_s": np.concatenate([s[keep_a], s[keep_v]]).astype(np.int32),
            "end_s": np.concatenate([e[keep_a], e[keep_v]]).astype(np.int32),
        }
    )
    return (
        df.sort("person", "zone", "start_s")
        .with_columns(
            (pl.col("start_s") > pl.col("end_s").shift(1).over("person", "zone")).fill_null(True).cum_sum().alias("g")
        )
        .group_by("person", "zone", "g")
        .agg(pl.col("start_s").min(), pl.col("end_s").max())
        .drop("g")
        .sort("person", "zone", "start_s")
    )


def visits_of(intervals: pl.DataFrame) -> pl.DataFrame:
    """One row per person and zone with a visit: the longest continuous presence >= 20 min."""
    return (
        intervals.with_columns((pl.col("end_s") - pl.col("start_s")).alias("dwell_s"))
        .filter(pl.col("dwell_s") >= VISIT_MIN_S)
        .sort("dwell_s", descending=True)
        .group_by("person", "zone", maintain_order=True)
        .first()
        .sort("person", "zone")
    )


def zone_counts(visits: pl.DataFrame) -> np.ndarray:
    """Distinct visitors per zone index."""
    out = np.zeros(len(ZONE_IDS), np.int64)
    if visits.height:
        vc = visits.group_by("zone").len()
        out[vc["zone"].to_numpy()] = vc["len"].to_numpy()
    return out
