"""Network events from true positions: what the operator's probes would record.

Per fully simulated subscriber and day: bursts of data sessions, calls and SMS following a
diurnal profile, handovers while travelling (the serving cell is re-chosen every
``travel_sample_s``), and a periodic location update after every ``periodic_update_s`` of
silence (the T3212 timer). People far from Helsingborg on an ordinary day get a sparse profile:
a few idle updates at the home cell at night and in the day. Machines report periodically.

Serving cells: at a fixed place the cell is drawn from the place's candidate cells with softmax
probabilities (so ping-pong between neighbours happens while standing still); while moving,
from the nearest cells by score + Gumbel noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import WorldConfig
from .geography import Geography, choose_cells, place_cells
from .population import BACKGROUND, DOMESTIC, MACHINE, Population
from .schedules import DAY_S, DayInfo, Plan, Stops

EVENT_TYPES = ("attach", "detach", "call", "sms", "data", "handover", "location_update")
ATTACH, DETACH, CALL, SMS, DATA, HANDOVER, LU = range(7)

# relative activity per local hour (smartphone traffic)
DIURNAL = np.array(
    [
        0.25,
        0.12,
        0.08,
        0.06,
        0.06,
        0.12,
        0.45,
        0.85,
        1.0,
        1.0,
        1.0,
        1.05,
        1.15,
        1.1,
        1.05,
        1.05,
        1.1,
        1.2,
        1.25,
        1.25,
        1.2,
        1.05,
        0.8,
        0.5,
    ]
)


@dataclass
class Events:
    """Events of one local day as integer columns (strings are attached by the writer)."""

    person: np.ndarray  # int64
    t: np.ndarray  # int32 seconds after local midnight
    cell: np.ndarray  # int32 cell index
    etype: np.ndarray  # int8

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("person", "t", "cell", "etype")))

    def take(self, idx: np.ndarray) -> Events:
        return Events(self.person[idx], self.t[idx], self.cell[idx], self.etype[idx])

    def __len__(self) -> int:
        return len(self.t)


def _diurnal_times(rng: np.random.Generator, n: int) -> np.ndarray:
    p = DIURNAL / DIURNAL.sum()
    hour = rng.choice(24, size=n, p=p)
    return (hour * 3600 + rng.integers(0, 3600, n)).astype(np.int64)


def _positions(
    stops: Stops,
    rows: np.ndarray,
    t: np.ndarray,
    geo: Geography,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For events (plan row, time): at a place (place >= 0) or moving (xy)."""
    key_s = stops.row * (1 << 18) + stops.arr
    key_e = rows * (1 << 18) + t
    i = np.searchsorted(key_s, key_e, side="right") - 1
    i = np.clip(i, 0, len(stops.row) - 1)
    at_stop = t <= stops.dep[i]
    nxt = np.minimum(i + 1, len(stops.row) - 1)
    moving = ~at_stop & (stops.row[nxt] == rows)
    at_stop |= ~moving
    place = np.where(at_stop, stops.place[i], -1)
    frac = np.zeros(len(t))
    span = (stops.arr[nxt] - stops.dep[i]).astype(float)
    frac[moving] = (t[moving] - stops.dep[i][moving]) / np.maximum(span[moving], 1.0)
    a = geo.place_xy[stops.place[i]]
    b = geo.place_xy[stops.place[nxt]]
    pos = a + (b - a) * frac[:, None]
    return place, pos, moving


def full_profile_events(
    cfg: WorldConfig, geo: Geography, pop: Population, plan: Plan, stops: Stops, day: DayInfo, rng: np.random.Generator
) -> Events:
    """Events of the fully simulated subscribers (residents, commuters, visitors on a trip)."""
    sub_rows = np.flatnonzero(pop.subscriber[plan.person])
    n = len(sub_rows)
    parts_r: list[np.ndarray] = []
    parts_t: list[np.ndarray] = []
    parts_e: list[np.ndarray] = []
    # data bursts
    nb = rng.poisson(cfg.data_bursts_per_day, n)
    br = np.repeat(sub_rows, nb)
    bt = _diurnal_times(rng, len(br))
    size = 1 + rng.poisson(cfg.events_per_burst - 1, len(br))
    er = np.repeat(br, size)
    start = np.repeat(bt, size)
    # offsets inside a burst: cumulative exponential gaps
    first = np.repeat(np.cumsum(size) - size, size)
    gaps = rng.exponential(40.0, len(er)).astype(np.int64)
    gaps[first] = 0
    cs = np.cumsum(gaps)
    off = cs - cs[first]
    parts_r.append(er)
    parts_t.append(start + off)
    parts_e.append(np.full(len(er), DATA, np.int8))
    for lam, et in ((cfg.calls_per_day, CALL), (cfg.sms_per_day, SMS)):
        k = rng.poisson(lam, n)
        r = np.repeat(sub_rows, k)
        parts_r.append(r)
        parts_t.append(_diurnal_times(rng, len(r)))
        parts_e.append(np.full(len(r), et, np.int8))
    # foreign SIMs attach when they arrive
    arriving = sub_rows[plan.on[sub_rows] > 0]
    parts_r.append(arriving)
    parts_t.append(plan.on[arriving].astype(np.int64))
    parts_e.append(np.full(len(arriving), ATTACH, np.int8))
    rows = np.concatenate(parts_r)
    t = np.concatenate(parts_t)
    et = np.concatenate(parts_e)
    # phones switched off at night: nothing before a morning attach
    off_night = np.zeros(len(plan.person), bool)
    off_night[sub_rows] = rng.random(n) < cfg.phone_off_night_share
    wake = np.zeros(len(plan.person), np.int64)
    wake[off_night] = rng.integers(6 * 3600, 8 * 3600, int(off_night.sum()))
    t = np.clip(t, 0, DAY_S - 1)
    keep = (t >= plan.on[rows]) & (t < plan.off[rows]) & (t >= wake[rows])
    rows, t, et = rows[keep], t[keep], et[keep]
    wrows = np.flatnonzero(off_night)
    rows = np.concatenate([rows, wrows])
    t = np.concatenate([t, wake[wrows]])
    et = np.concatenate([et, np.full(len(wrows), ATTACH, np.int8)])

    # handovers along travel legs (subscribers only)
    same_next = np.r_[stops.row[1:] == stops.row[:-1], False]
    legs = np.flatnonzero(same_next & pop.subscriber[plan.person[stops.row]])
    dep = stops.dep[legs].astype(np.int64)
    arr = stops.arr[legs + 1].astype(np.int64)
    ns = np.maximum((arr - dep) // cfg.travel_sample_s, 0)
    has = ns > 0
    legs, dep, arr, ns = legs[has], dep[has], arr[has], ns[has]
    ho_parts = []
    if len(legs):
        lr = np.repeat(legs, ns + 1)
        k = np.arange(len(lr)) - np.repeat(np.cumsum(ns + 1) - (ns + 1), ns + 1)
        st = np.repeat(dep, ns + 1) + k * cfg.travel_sample_s
        frac = (st - np.repeat(dep, ns + 1)) / np.maximum(np.repeat(arr - dep, ns + 1), 1)
        a = geo.place_xy[stops.place[lr]]
        b = geo.place_xy[stops.place[lr + 1]]
        pos = a + (b - a) * frac[:, None]
        cell = choose_cells(pos, geo, day.is_expo, rng, cfg.cell_choice_temperature)
        change = np.r_[False, (cell[1:] != cell[:-1]) & (lr[1:] == lr[:-1])]
        hrow = stops.row[lr[change]]
        ht = st[change]
        ok = (ht >= plan.on[hrow]) & (ht < plan.off[hrow])
        ho_parts.append((hrow[ok], ht[ok], cell[change][ok]))

    # position and cell of all non-handover events
    place, pos, _moving = _positions(stops, rows, t.astype(np.int64), geo)
    cell = np.empty(len(rows), np.int32)
    at = place >= 0
    cell[at] = place_cells(geo, place[at], day.is_expo, rng)
    cell[~at] = choose_cells(pos[~at], geo, day.is_expo, rng, cfg.cell_choice_temperature)
    for hrow, ht, hcell in ho_parts:
        rows = np.concatenate([rows, hrow])
        t = np.concatenate([t, ht])
        et = np.concatenate([et, np.full(len(hrow), HANDOVER, np.int8)])
        cell = np.concatenate([cell, hcell])

    # periodic location updates fill every silence longer than the T3212 timer
    order = np.lexsort((t, rows))
    rows, t, et, cell = rows[order], t[order], et[order], cell[order]
    T = cfg.periodic_update_s
    phase = rng.integers(0, T, len(plan.person))
    # gaps: from the start of the active window (with a random phase) to the first event,
    # between events, and from the last event to the end of the window
    starts = np.maximum(plan.on, wake.astype(np.int32)) - phase * (plan.on == 0)
    g_row = np.concatenate([sub_rows, rows])
    g_from = np.concatenate([starts[sub_rows].astype(np.int64), t])
    g_order = np.lexsort((g_from, g_row))
    g_row, g_from = g_row[g_order], g_from[g_order]
    nxt_same = np.r_[g_row[1:] == g_row[:-1], False]
    g_to = np.where(nxt_same, np.r_[g_from[1:], 0], plan.off[g_row])
    nlu = np.maximum((g_to - g_from - 1) // T, 0)
    lu_row = np.repeat(g_row, nlu)
    kk = np.arange(len(lu_row)) - np.repeat(np.cumsum(nlu) - nlu, nlu) + 1
    lu_t = np.repeat(g_from, nlu) + kk * T
    keep = (lu_t >= 0) & (lu_t < DAY_S) & (lu_t >= plan.on[lu_row]) & (lu_t >= wake[lu_row])
    lu_row, lu_t = lu_row[keep], lu_t[keep]
    lplace, lpos, _ = _positions(stops, lu_row, lu_t, geo)
    lcell = np.empty(len(lu_row), np.int32)
    at = lplace >= 0
    lcell[at] = place_cells(geo, lplace[at], day.is_expo, rng)
    lcell[~at] = choose_cells(lpos[~at], geo, day.is_expo, rng, cfg.cell_choice_temperature)
    rows = np.concatenate([rows, lu_row])
    return Events(
        person=plan.person[rows],
        t=np.concatenate([t, lu_t]).astype(np.int32),
        cell=np.concatenate([cell, lcell]),
        etype=np.concatenate([et, np.full(len(lu_row), LU, np.int8)]),
    )


def sparse_events(
    cfg: WorldConfig, geo: Geography, pop: Population, plan: Plan, day: DayInfo, rng: np.random.Generator
) -> Events:
    """Idle signalling at home of Swedish subscribers who are not simulated in full today."""
    busy = np.zeros(pop.n, bool)
    busy[plan.person] = True
    who = np.flatnonzero(((pop.cls == BACKGROUND) | (pop.cls == DOMESTIC)) & pop.subscriber & ~busy)
    kn = rng.poisson(cfg.sparse_night_events, len(who))
    kn[rng.random(len(who)) < cfg.phone_off_night_share] = 0
    kd = rng.poisson(cfg.sparse_day_events, len(who))
    pn = np.repeat(who, kn)
    u = rng.integers(0, 8 * 3600, len(pn))
    tn = np.where(u < 6 * 3600, u, u + 16 * 3600)
    pd_ = np.repeat(who, kd)
    td = rng.integers(7 * 3600, 22 * 3600, len(pd_))
    person = np.concatenate([pn, pd_])
    t = np.concatenate([tn, td]).astype(np.int32)
    et = np.concatenate(
        [
            np.where(rng.random(len(pn)) < 0.75, LU, DATA),
            rng.choice([LU, DATA, DATA, DATA, SMS, CALL], size=len(pd_)),
        ]
    ).astype(np.int8)
    cell = place_cells(geo, pop.home[person], day.is_expo, rng)
    return Events(person=person.astype(np.int64), t=t, cell=cell, etype=et)


def machine_events(cfg: WorldConfig, geo: Geography, pop: Population, day: DayInfo, rng: np.random.Generator) -> Events:
    """Fixed SIMs reporting every period (with a little jitter), nearly always one cell."""
    m = np.flatnonzero((pop.cls == MACHINE) & pop.subscriber)
    period = pop.machine_period[m].astype(np.int64)
    phase = (m * 2_654_435_761 % np.maximum(period, 1)).astype(np.int64)  # stable across days
    k = (DAY_S - 1 - phase) // period + 1
    person = np.repeat(m, k)
    idx = np.arange(len(person)) - np.repeat(np.cumsum(k) - k, k)
    t = np.repeat(phase, k) + idx * np.repeat(period, k) + rng.integers(0, 20, len(person))
    t = np.minimum(t, DAY_S - 1).astype(np.int32)
    et = np.where(rng.random(len(person)) < 0.85, DATA, LU).astype(np.int8)
    cell = place_cells(geo, pop.home[person], day.is_expo, rng)
    return Events(person=person.astype(np.int64), t=t, cell=cell, etype=et)
