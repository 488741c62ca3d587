"""Orchestration: build the world once, then simulate, write and account for it day by day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from .config import WorldConfig
from .dirt import Batch, inject
from .geography import Geography, build_geography, haversine_km
from .population import (
    MACHINE,
    Population,
    build_population,
    expo_day_weights,
)
from .schedules import DayInfo, Plan, add_itineraries, base_plan, chain, day_info
from .signalling import Events, full_profile_events, machine_events, sparse_events
from .truth import visits_of, zone_counts, zone_intervals
from .truthfiles import TruthWriter
from .writer import EventWriter, write_reference
from .zones import AREAS, VENUE_PARENT, ZONE_IDS

SIM_VERSION = "1"


def daily_targets(cfg: WorldConfig, scale: float, d: dt.date) -> np.ndarray:
    """Target distinct visitors per zone (ZONE_IDS order) for one day at this scale."""
    days, w = expo_day_weights(cfg)
    total = np.array([cfg.target_visits.get(z, 0) for z in ZONE_IDS], float) * scale
    if cfg.expo_start <= d <= cfg.expo_end:
        return total * w[days.index(d)] / w.sum()
    avg = total / len(days)
    t = avg * cfg.baseline_area_factor
    t[len(AREAS) :] = 0.0  # venues open with the expo
    if d.weekday() >= 5:
        t *= 1.15
    return t


def _draw(rng: np.random.Generator, weight: np.ndarray, want: float) -> np.ndarray:
    """Independent inclusions with probabilities min(1, c*weight) summing to ``want``."""
    if want <= 0 or weight.sum() <= 0:
        return np.zeros(len(weight), bool)
    c = want / weight.sum()
    for _ in range(6):  # redistribute what the cap at 1 cut off
        p = np.minimum(1.0, c * weight)
        short = want - p.sum()
        free = weight[p < 1].sum()
        if short <= 1e-6 or free <= 0:
            break
        c += short / free
    return rng.random(len(weight)) < np.minimum(1.0, c * weight)


def choose_goers(
    cfg: WorldConfig, pop: Population, plan: Plan, already: np.ndarray, deficit: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick today's zone-goers and the areas/venues each visits, to fill the deficit per zone.

    ``already`` (rows, zones) marks persons who already have a visit from home or work.
    Returns plan rows, inc_area (rows, 3), inc_venue (rows, 5).
    """
    n_areas = len(AREAS)
    visitors = np.flatnonzero(plan.visitor & (rng.random(len(plan.person)) < 0.92))
    locals_ = np.flatnonzero(~plan.visitor)
    f_city = already[locals_, 0].mean() if len(locals_) else 0.0
    need = deficit[0] / (cfg.goer_city_share * max(1.0 - f_city, 0.05))
    n_local = int(np.clip(round(need - len(visitors)), 0, len(locals_)))
    w_local = np.where(pop.cls[plan.person[locals_]] == 1, 0.6, 1.0)  # commuters a bit less
    key = rng.random(len(locals_)) ** (1.0 / w_local)
    chosen = locals_[np.argsort(-key)[:n_local]] if n_local else np.zeros(0, np.int64)
    rows = np.sort(np.concatenate([visitors, chosen]))
    g = len(rows)
    inc_area = np.zeros((g, n_areas), bool)
    inc_venue = np.zeros((g, len(VENUE_PARENT)), bool)
    if g == 0:
        return rows, inc_area, inc_venue
    # visitors came for the expo: they are more likely than locals to go to each zone
    weight = np.where(plan.visitor[rows], 1.8, 1.0)
    for v, a in enumerate(VENUE_PARENT):
        inc_venue[:, v] = _draw(rng, weight, deficit[n_areas + v])
        inc_area[:, a] |= inc_venue[:, v]
    for a in range(n_areas):
        new_from_venues = (inc_area[:, a] & ~already[rows, a]).sum()
        elig = ~already[rows, a] & ~inc_area[:, a]
        inc_area[:, a] |= elig & _draw(rng, weight * elig, deficit[a] - new_from_venues)
    return rows, inc_area, inc_venue


def _row_of_person(plan: Plan, persons: np.ndarray) -> np.ndarray:
    order = np.argsort(plan.person, kind="stable")
    pos = np.searchsorted(plan.person[order], persons)
    return order[pos]


def _local_midnight_us(d: dt.date, tz: str) -> int:
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).timestamp()) * 1_000_000


def _cell_helpers(geo: Geography) -> tuple[np.ndarray, np.ndarray]:
    """Neighbouring cells (for same-second duplicates) and cells far from Helsingborg."""
    _, nb = geo.tree.query(geo.cell_xy, k=7)
    neighbours = nb[:, 1:].astype(np.int32)
    lon = geo.cells["longitude"].to_numpy()
    lat = geo.cells["latitude"].to_numpy()
    far = np.flatnonzero(haversine_km(lon, lat, 12.70, 56.05) > 200).astype(np.int32)
    return neighbours, far


def simulate_day(
    cfg: WorldConfig, geo: Geography, pop: Population, day: DayInfo, scale: float, seed: int, carry: np.ndarray
) -> tuple[Plan, pl.DataFrame, pl.DataFrame, Events, np.ndarray]:
    """One local day: plans, truth (intervals, visits) and clean events."""
    rng = np.random.default_rng([seed, day.ordinal, 7])
    plan = base_plan(cfg, geo, pop, day, rng)
    stops0 = chain(plan, geo)
    v0 = visits_of(zone_intervals(stops0, plan, geo))
    already = np.zeros((len(plan.person), len(ZONE_IDS)), bool)
    if v0.height:
        already[_row_of_person(plan, v0["person"].to_numpy()), v0["zone"].to_numpy()] = True
    target = daily_targets(cfg, scale, day.date) + carry
    deficit = np.maximum(target - zone_counts(v0), 0.0)
    rows, inc_area, inc_venue = choose_goers(cfg, pop, plan, already, deficit, rng)
    add_itineraries(plan, geo, rows, inc_area, inc_venue, rng)
    stops = chain(plan, geo)
    intervals = zone_intervals(stops, plan, geo)
    visits = visits_of(intervals)
    ev = Events.concat(
        [
            full_profile_events(cfg, geo, pop, plan, stops, day, rng),
            sparse_events(cfg, geo, pop, plan, day, rng),
            machine_events(cfg, geo, pop, day, rng),
        ]
    )
    return plan, intervals, visits, ev, target


def simulate_world(
    landing_dir: Path,
    truth_dir: Path,
    *,
    scale: float = 1.0,
    seed: int = 42,
    start: dt.date | None = None,
    end: dt.date | None = None,
    config: WorldConfig | None = None,
    progress: bool = True,
) -> dict:
    """Simulate the H22 world into ``landing_dir`` (the pipeline's input) and ``truth_dir``.

    Streams day by day; the same arguments give byte-identical files. Returns a summary.
    """
    t_start = time.perf_counter()
    cfg = config or WorldConfig()
    start = start or cfg.window_start
    end = end or cfg.window_end
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    landing = Path(landing_dir)
    truth = Path(truth_dir)
    geo = build_geography(seed, cfg.expo_start, cfg.expo_end, cfg.helsingborg_population, cfg.sweden_population)
    pop = build_population(cfg, geo, scale, seed)
    write_reference(landing, geo, cfg, scale)
    writer = EventWriter(landing, geo, pop.imsi, cfg)
    tw = TruthWriter(truth, cfg, geo, pop, scale)
    neighbours, far = _cell_helpers(geo)
    n_cells = geo.cells.height
    days = [start + dt.timedelta(i) for i in range((end - start).days + 1)]
    it = days
    if progress:
        from tqdm import tqdm

        it = tqdm(days, desc="simulating", unit="day")
    carry = np.zeros(len(ZONE_IDS))
    cum_gap = np.zeros(len(ZONE_IDS))
    pending_late: Batch | None = None
    events_per_day: dict[str, int] = {}
    truncated: str | None = None
    for d in it:
        day = day_info(cfg, d)
        plan, intervals, visits, ev, target = simulate_day(
            cfg, geo, pop, day, scale, seed, carry if day.is_expo else 0 * carry
        )
        counts = tw.add_day(day, plan, intervals, visits, target)
        if day.is_expo:
            # integral feedback: what a day missed is added to the next day's targets
            cum_gap += daily_targets(cfg, scale, d) - counts
            carry = np.maximum(cum_gap, -daily_targets(cfg, scale, d))
        # clean events -> rows with string-table indices
        rng = np.random.default_rng([seed, day.ordinal, 11])
        us = (
            _local_midnight_us(d, cfg.timezone)
            + ev.t.astype(np.int64) * 1_000_000
            + rng.integers(0, 1000, len(ev)) * 1000
        )
        tac = pop.tac[ev.person]
        tac = np.where(rng.random(len(ev)) < cfg.missing_tac_share, -1, tac).astype(np.int16)
        batch = Batch(imsi=ev.person, cell=ev.cell, etype=ev.etype, us=us, has_time=np.ones(len(ev), bool), tac=tac)
        today, late, dirt_counts = inject(batch, cfg, pop.n, n_cells, neighbours, far, rng)
        if pending_late is not None:
            today = Batch.concat([today, pending_late])
        trunc = cfg.truncated_file and d == cfg.truncated_file_date
        paths = writer.write_day(d, today, truncate=trunc)
        if trunc:
            truncated = str(paths[0].relative_to(landing))
        events_per_day[d.isoformat()] = len(today)
        tw.add_dirt(d, dirt_counts, len(ev))
        pending_late = late
    if pending_late is not None and len(pending_late):
        d = end + dt.timedelta(1)
        writer.write_day(d, pending_late, truncate=False)
        events_per_day[d.isoformat()] = len(pending_late)
    seconds = time.perf_counter() - t_start
    summary = {
        "days": len(days),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "scale": scale,
        "seed": seed,
        "events_per_day": events_per_day,
        "events_total": int(sum(events_per_day.values())),
        "persons": int((pop.cls != MACHINE).sum()),
        "machines": int((pop.cls == MACHINE).sum()),
        "subscribers": int(pop.subscriber.sum()),
        "truncated_file": truncated,
        "seconds": round(seconds, 2),
    }
    tw.finish(summary, config_dict(cfg), SIM_VERSION)
    return summary


def config_dict(cfg: WorldConfig) -> dict:
    def conv(v):
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, tuple | list):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {k: conv(v) for k, v in dataclasses.asdict(cfg).items()}


__all__ = ["WorldConfig", "daily_targets", "simulate_world"]
