"""Daily plans: where each fully simulated person is, from local midnight to midnight.

A day is a chain of *stops* at places joined by straight-line travel. The chain has fixed slots:

    night place -> [work/school] -> [zone itinerary: 3 areas x (2 venue + 1 spot)] -> [leisure] -> night place

Slots are filled per person with numpy (no per-person Python loops); the zone itinerary (the
"goers", who visit expo areas and venues) is decided by the world orchestration so that the
truth meets its daily targets.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from .config import WorldConfig
from .geography import Geography
from .population import COMMUTER, DOMESTIC, INTERNATIONAL, RESIDENT, Population
from .zones import AREAS, VENUE_PARENT

DAY_S = 86_400
N_ITIN = 3 * len(AREAS)  # itinerary slots: per area two venue slots and one general spot
SLOT_WORK = 1
SLOT_ITIN = 2
SLOT_LEISURE = SLOT_ITIN + N_ITIN
N_SLOTS = SLOT_LEISURE + 2
#: venue indices per area (two slots per area, -1 = no venue in that slot)
AREA_VENUES = np.full((len(AREAS), 2), -1, dtype=np.int64)
for _v, _a in enumerate(VENUE_PARENT):
    _row = AREA_VENUES[_a]
    _row[np.flatnonzero(_row < 0)[0]] = _v


@dataclass
class DayInfo:
    date: dt.date
    ordinal: int
    is_workday: bool
    is_school: bool
    is_expo: bool
    summer_vacation: float  # share of workers on vacation


def day_info(cfg: WorldConfig, d: dt.date) -> DayInfo:
    work = d.weekday() < 5 and d not in cfg.holidays
    vac = 0.05 if d < dt.date(d.year, 6, 20) else 0.30
    return DayInfo(d, d.toordinal(), work, work and d <= cfg.school_end, cfg.expo_start <= d <= cfg.expo_end, vac)


@dataclass
class Plan:
    """Slot matrices of the day for the fully simulated persons (rows)."""

    person: np.ndarray  # int64 person index per row
    place: np.ndarray  # (n, N_SLOTS) int32 place, -1 = slot unused
    dwell: np.ndarray  # (n, N_SLOTS) int32 seconds (slot 0: departure time; last: unused)
    on: np.ndarray  # int32 start of the active window (foreign SIM enters the network)
    off: np.ndarray  # int32 end of the active window
    visitor: np.ndarray  # bool: on a trip to Helsingborg today
    itin_start: np.ndarray  # int32 earliest start of a zone itinerary when no work precedes
    int_last: np.ndarray  # bool: a foreign SIM on its last day (leaves the network)


@dataclass
class Stops:
    """The day as a long table of stops, sorted by row then time."""

    row: np.ndarray  # int64 row of the Plan
    place: np.ndarray  # int32
    arr: np.ndarray  # int32 seconds after local midnight
    dep: np.ndarray  # int32


def travel_time(geo: Geography, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Door-to-door seconds between places: walk, bike/bus, car/train by distance."""
    d = np.hypot(*(geo.place_xy[a] - geo.place_xy[b]).T)
    speed = np.select([d < 1200, d < 4000, d < 60_000], [1.3, 4.0, 11.0], 22.0)
    return np.where(d > 0, d / speed + 120.0, 0.0)


def _active_trips(pop: Population, ordinal: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trips covering the day: persons, day index within trip, trip length, hotel."""
    t = pop.trips
    k = ordinal - t.start
    on = (k >= 0) & (k < t.days)
    person = t.person[on]
    # a person with two overlapping trips keeps the first one
    _, first = np.unique(person, return_index=True)
    sel = np.flatnonzero(on)[first]
    return sel, k[sel], t.days[sel]


def base_plan(cfg: WorldConfig, geo: Geography, pop: Population, day: DayInfo, rng: np.random.Generator) -> Plan:
    """Everyone's plan without zone itineraries (those are added by ``add_itineraries``)."""
    res = np.flatnonzero((pop.cls == RESIDENT) | (pop.cls == COMMUTER))
    sel, kday, tdays = _active_trips(pop, day.ordinal)
    tp = pop.trips.person[sel]
    vis_ok = (pop.cls[tp] == DOMESTIC) | (pop.cls[tp] == INTERNATIONAL)
    sel, kday, tdays, tp = sel[vis_ok], kday[vis_ok], tdays[vis_ok], tp[vis_ok]
    person = np.concatenate([res, tp]).astype(np.int64)
    n = len(person)
    nr = len(res)
    place = np.full((n, N_SLOTS), -1, np.int32)
    dwell = np.zeros((n, N_SLOTS), np.int32)
    on = np.zeros(n, np.int32)
    off = np.full(n, DAY_S, np.int32)
    visitor = np.zeros(n, bool)
    visitor[nr:] = True

    # residents and commuters: home -> work -> (leisure) -> home
    home = pop.home[res]
    place[:nr, 0] = home
    place[:nr, -1] = home
    occ = pop.occupation[res]
    works = np.zeros(nr, bool)
    if day.is_workday:
        works = (occ == 1) & (rng.random(nr) >= day.summer_vacation + 0.04)
        if day.is_school:
            works |= (occ == 2) & (rng.random(nr) < 0.95)
    works &= pop.work[res] >= 0
    place[:nr, SLOT_WORK] = np.where(works, pop.work[res], -1)
    student = occ == 2
    dwell[:nr, SLOT_WORK] = np.where(student, rng.normal(6.5, 0.7, nr), rng.normal(8.4, 0.9, nr)).clip(3, 11) * 3600
    leave = np.where(works, rng.normal(7.5, 0.7, nr), rng.normal(11.5, 2.0, nr)).clip(5.5, 19) * 3600
    leis = rng.random(nr) < np.where(works, 0.20, 0.45)
    place[:nr, SLOT_LEISURE] = np.where(leis, geo.leisure[rng.integers(0, len(geo.leisure), nr)], -1)
    dwell[:nr, SLOT_LEISURE] = rng.uniform(0.4, 1.8, nr) * 3600
    itin_start = np.where(works, 0, leave).astype(np.int32)
    # nobody to go: stays home all day (departure at midnight)
    idle = ~works & ~leis
    leave = np.where(idle, DAY_S, leave)
    dwell[:nr, 0] = leave

    # visitors on a trip day
    nv = n - nr
    first = kday == 0
    last = kday == tdays - 1
    hotel = pop.trips.hotel[sel]
    is_int = pop.cls[tp] == INTERNATIONAL
    vhome = np.where(is_int, geo.station, pop.home[tp])
    start_place = np.where(first | (hotel < 0), vhome, hotel)
    end_place = np.where(last | (hotel < 0), vhome, hotel)
    place[nr:, 0] = start_place
    place[nr:, -1] = end_place
    arrive = rng.normal(11.0, 1.5, nv).clip(8.0, 16.0) * 3600
    # day-trippers leave home so that they arrive in the morning; hotel guests go out ~10
    tt = travel_time(geo, start_place, np.full(nv, geo.station))
    dep0 = np.where(first, arrive - tt, rng.normal(10.0, 1.0, nv).clip(7.5, 13) * 3600)
    dep0 = np.clip(dep0, 3600, DAY_S - 3600)
    dwell[nr:, 0] = dep0
    itin_start = np.concatenate([itin_start, dep0.astype(np.int32)])
    # foreign SIMs exist only from arrival (at the station) to departure
    on[nr:] = np.where(is_int & first, dep0, 0).astype(np.int32)
    leis_v = rng.random(nv) < 0.3
    place[nr:, SLOT_LEISURE] = np.where(leis_v, geo.leisure[rng.integers(0, len(geo.leisure), nv)], -1)
    dwell[nr:, SLOT_LEISURE] = rng.uniform(0.5, 1.5, nv) * 3600
    return Plan(
        person=person,
        place=place,
        dwell=dwell,
        on=on,
        off=off,
        visitor=visitor,
        itin_start=itin_start,
        int_last=np.concatenate([np.zeros(nr, bool), is_int & last]),
    )


def add_itineraries(
    plan: Plan, geo: Geography, rows: np.ndarray, inc_area: np.ndarray, inc_venue: np.ndarray, rng: np.random.Generator
) -> None:
    """Fill the zone itinerary slots of the given plan rows.

    inc_area (len(rows), 3) and inc_venue (len(rows), 5) say which areas and venues each goer
    visits; areas are visited in random order, venues before the area's general spot.
    """
    n = len(rows)
    if n == 0:
        return
    order = np.argsort(rng.random((n, len(AREAS))), axis=1)
    for k in range(len(AREAS)):
        a = order[:, k]
        ai = inc_area[np.arange(n), a]
        for j in range(2):
            v = AREA_VENUES[a, j]
            has = ai & (v >= 0)
            vv = np.where(v >= 0, v, 0)
            has &= inc_venue[np.arange(n), vv]
            spots = np.stack([s[rng.integers(0, len(s), n)] for s in geo.venue_spots], axis=1)
            pl_ = spots[np.arange(n), vv]
            col = SLOT_ITIN + 3 * k + j
            plan.place[rows, col] = np.where(has, pl_, -1)
            plan.dwell[rows, col] = (np.exp(rng.normal(np.log(35), 0.45, n)).clip(21, 150) * 60).astype(np.int32)
        any_venue = np.zeros(n, bool)
        for j in range(2):
            any_venue |= plan.place[rows, SLOT_ITIN + 3 * k + j] >= 0
        gen = ai & (~any_venue | (rng.random(n) < 0.5))
        spots = np.stack([s[rng.integers(0, len(s), n)] for s in geo.area_spots], axis=1)
        col = SLOT_ITIN + 3 * k + 2
        plan.place[rows, col] = np.where(gen, spots[np.arange(n), a], -1)
        plan.dwell[rows, col] = (np.exp(rng.normal(np.log(55), 0.55, n)).clip(21, 240) * 60).astype(np.int32)
    # a goer who had planned to stay at home leaves for the itinerary
    idle = plan.dwell[rows, 0] >= DAY_S
    plan.dwell[rows[idle], 0] = plan.itin_start[rows[idle]]


def chain(plan: Plan, geo: Geography) -> Stops:
    """Turn slot matrices into timed stops; trailing slots are dropped if the day overflows."""
    n = len(plan.person)
    place = plan.place.copy()
    for _attempt in range(4):
        arr = np.zeros((n, N_SLOTS), np.float64)
        dep = np.zeros((n, N_SLOTS), np.float64)
        dep[:, 0] = plan.dwell[:, 0]
        t = dep[:, 0].copy()
        prev = place[:, 0].copy()
        for j in range(1, N_SLOTS - 1):
            ok = place[:, j] >= 0
            tt = travel_time(geo, prev, np.where(ok, place[:, j], prev))
            arr[:, j] = np.where(ok, t + tt, t)
            dep[:, j] = np.where(ok, arr[:, j] + plan.dwell[:, j], t)
            t = np.where(ok, dep[:, j], t)
            prev = np.where(ok, place[:, j], prev)
        end = place[:, -1]
        tt = travel_time(geo, prev, end)
        arr[:, -1] = t + tt
        dep[:, -1] = DAY_S
        over = arr[:, -1] > DAY_S - 600
        if not over.any():
            break
        # drop the last used intermediate slot of overflowing rows and try again
        used = place[:, 1:-1] >= 0
        lastj = np.where(used.any(axis=1), N_SLOTS - 2 - np.argmax(used[:, ::-1], axis=1), -1)
        drop = over & (lastj > 0)
        place[np.flatnonzero(drop), lastj[drop]] = -1
    arr[:, -1] = np.minimum(arr[:, -1], DAY_S - 60)
    arr[:, 0] = 0
    # stays at home all day: a single stop
    valid = place >= 0
    home_all_day = dep[:, 0] >= DAY_S
    valid[home_all_day, -1] = False
    dep[home_all_day, 0] = DAY_S
    rows = np.broadcast_to(np.arange(n)[:, None], place.shape)
    s = Stops(
        row=rows[valid].astype(np.int64),
        place=place[valid].astype(np.int32),
        arr=np.round(arr[valid]).astype(np.int32),
        dep=np.round(dep[valid]).astype(np.int32),
    )
    # monotone times (rounding) and end of day
    s.dep = np.minimum(np.maximum(s.dep, s.arr), DAY_S)
    # departing internationals: leave the network 10 minutes after reaching the station
    int_last = plan.int_last
    if int_last.any():
        last_idx = np.flatnonzero(np.r_[s.row[1:] != s.row[:-1], True])
        r = s.row[last_idx]
        m = int_last[r]
        plan.off[r[m]] = np.minimum(s.arr[last_idx[m]] + 600, DAY_S)
    return s
