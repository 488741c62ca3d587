"""People: who lives where, who is a subscriber, their SIM (IMSI, TAC), trips to Helsingborg.

Person classes (``PERSON_CLASSES``):

- ``resident``: lives in Helsingborg (SCB 1283), full daily life in the city;
- ``commuter``: lives in a neighbouring municipality and works in Helsingborg on workdays;
- ``domestic_visitor``: lives elsewhere in Sweden and makes day or overnight trips to Helsingborg;
- ``international_visitor``: a foreign SIM present only on its trip days;
- ``machine``: a fixed SIM (meter, alarm, vending machine) with periodic traffic;
- ``background``: every other Swede; only their sparse night-time signalling at home is
  simulated, so that market shares can be measured against the population.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from crowd_platform.settings import REFERENCE_DATA_DIR

from .config import WorldConfig
from .geography import HOST_CODE, Geography, haversine_km

PERSON_CLASSES = ("resident", "commuter", "domestic_visitor", "international_visitor", "machine", "background")
RESIDENT, COMMUTER, DOMESTIC, INTERNATIONAL, MACHINE, BACKGROUND = range(6)
VISITOR_CLASSES = ("resident", "domestic_visitor", "international_visitor")

# (iso2, MCC, MNC, visitor weight (% of international visitors), operator's roaming share)
# MCCs per ITU-T E.212; one common network code per country.
COUNTRIES: tuple[tuple[str, str, str, float, float], ...] = (
    ("DK", "238", "01", 31.0, 0.45),
    ("NO", "242", "01", 8.0, 0.40),
    ("DE", "262", "01", 10.0, 0.35),
    ("FI", "244", "91", 4.0, 0.55),
    ("GB", "234", "15", 4.0, 0.30),
    ("PL", "260", "01", 4.0, 0.30),
    ("NL", "204", "04", 4.0, 0.35),
    ("US", "310", "260", 3.5, 0.30),
    ("FR", "208", "01", 2.5, 0.30),
    ("ES", "214", "01", 2.0, 0.30),
    ("IT", "222", "01", 2.0, 0.30),
    ("EE", "248", "01", 1.2, 0.50),
    ("LV", "247", "01", 0.6, 0.45),
    ("LT", "246", "01", 0.8, 0.40),
    ("IS", "274", "01", 0.5, 0.40),
    ("CH", "228", "01", 1.2, 0.30),
    ("AT", "232", "01", 1.0, 0.30),
    ("BE", "206", "01", 1.0, 0.30),
    ("IE", "272", "01", 0.7, 0.30),
    ("PT", "268", "01", 0.6, 0.30),
    ("CZ", "230", "01", 0.8, 0.30),
    ("SK", "231", "01", 0.48, 0.30),
    ("HU", "216", "01", 0.64, 0.30),
    ("RO", "226", "01", 0.6, 0.30),
    ("BG", "284", "01", 0.48, 0.30),
    ("GR", "202", "01", 0.64, 0.30),
    ("HR", "219", "01", 0.48, 0.30),
    ("SI", "293", "40", 0.32, 0.30),
    ("RS", "220", "01", 0.32, 0.30),
    ("UA", "255", "01", 1.0, 0.30),
    ("TR", "286", "01", 0.5, 0.25),
    ("CN", "460", "00", 1.2, 0.20),
    ("JP", "440", "10", 0.6, 0.25),
    ("KR", "450", "05", 0.64, 0.25),
    ("IN", "404", "10", 1.2, 0.25),
    ("AU", "505", "01", 0.5, 0.30),
    ("CA", "302", "220", 0.7, 0.30),
    ("BR", "724", "05", 0.64, 0.25),
    ("MX", "334", "020", 0.32, 0.25),
    ("AR", "722", "07", 0.24, 0.25),
    ("ZA", "655", "01", 0.32, 0.25),
    ("IL", "425", "01", 0.48, 0.25),
    ("AE", "424", "02", 0.48, 0.25),
    ("SG", "525", "01", 0.48, 0.25),
    ("TH", "520", "01", 0.32, 0.25),
    ("HK", "454", "00", 0.32, 0.25),
    ("TW", "466", "92", 0.24, 0.25),
    ("NZ", "530", "01", 0.24, 0.30),
    ("CL", "730", "01", 0.16, 0.25),
    ("CO", "732", "101", 0.16, 0.25),
    ("EG", "602", "01", 0.24, 0.25),
    ("MA", "604", "00", 0.16, 0.25),
    ("LU", "270", "01", 0.24, 0.30),
    ("MT", "278", "01", 0.16, 0.30),
    ("CY", "280", "01", 0.16, 0.30),
    ("GE", "282", "01", 0.16, 0.25),
    ("VN", "452", "01", 0.24, 0.25),
    ("ID", "510", "10", 0.24, 0.25),
    ("PH", "515", "02", 0.24, 0.25),
    ("MY", "502", "12", 0.16, 0.25),
    ("PK", "410", "01", 0.24, 0.25),
    ("NG", "621", "20", 0.16, 0.25),
    ("KE", "639", "02", 0.13, 0.25),
)
COUNTRY_ISO2 = ("SE", *tuple(c[0] for c in COUNTRIES))


# Type allocation codes (8 digits). Handsets vs IoT modules; documented in docs/simulator.md.
def _tacs_of(classes: set[str]) -> tuple[str, ...]:
    """8-digit TACs of the given handset classes, from the repo's TAC class table (the one the
    pipeline reads), so that a machine's TAC in the feed is one the operator's table knows."""
    table = pl.read_csv(REFERENCE_DATA_DIR / "tac_classes.csv", schema_overrides={"tac_prefix": pl.String})
    prefixes = table.filter(pl.col("device_class").is_in(sorted(classes)))["tac_prefix"].to_list()
    return tuple(sorted(prefix.ljust(8, "0") for prefix in prefixes))


HANDSET_TACS = _tacs_of({"smartphone", "feature_phone"})
IOT_TACS = _tacs_of({"iot_module", "meter", "router", "car"})
TACS = HANDSET_TACS + IOT_TACS
#: other Swedish operators (their subscribers do not appear in the operator's data)
OTHER_SE_MNC = ("07", "08", "02")


@dataclass
class Trips:
    """Visitor trips: one row per trip; each trip covers ``days`` consecutive days."""

    person: np.ndarray  # int64 person index
    start: np.ndarray  # int32 day ordinal (date.toordinal())
    days: np.ndarray  # int16 number of days (1 = day trip)
    hotel: np.ndarray  # int32 hotel place (-1 for day trips)


@dataclass
class Population:
    cls: np.ndarray  # int8 person class
    muni: np.ndarray  # int16 home municipality index (-1 for foreigners)
    country: np.ndarray  # int16 index into COUNTRY_ISO2 (0 = SE)
    subscriber: np.ndarray  # bool: produces events on the operator's network
    home: np.ndarray  # int32 home place (-1 for foreigners)
    work: np.ndarray  # int32 workplace (-1 none)
    occupation: np.ndarray  # int8 0 none, 1 worker, 2 student
    tac: np.ndarray  # int16 index into TACS (-1 none)
    machine_period: np.ndarray  # int32 seconds (machines only, else 0)
    imsi: pa.Array  # one IMSI string per person (Arrow, to keep memory low)
    trips: Trips
    share_by_muni: np.ndarray  # the operator's drawn market share per municipality

    @property
    def n(self) -> int:
        return len(self.cls)


def _msin(n: int, digits: int, salt: int) -> np.ndarray:
    """Distinct pseudo-random subscriber numbers: an affine permutation of 0..10**digits-1."""
    mod = 10**digits
    a = 7_919_111 if digits >= 8 else 7919
    k = np.arange(n, dtype=np.int64) + salt
    return (k * a + 1_234_567) % mod


def _imsi_strings(prefixes: list[str], pidx: np.ndarray, msin: np.ndarray, digits: np.ndarray) -> pa.Array:
    """prefix (MCC+MNC) + the last ``digits`` digits of the zero-padded subscriber number."""
    df = pl.DataFrame({"p": pl.Series(prefixes).gather(pl.Series(pidx.astype(np.uint32))), "m": msin, "d": digits})
    out = df.select(
        pl.col("p") + pl.col("m").cast(pl.String).str.zfill(10).str.slice(10 - pl.col("d").cast(pl.Int64))
    ).to_series()
    return out.to_arrow().cast(pa.string())


def expo_day_weights(cfg: WorldConfig) -> tuple[list[dt.date], np.ndarray]:
    """Relative attractiveness of each expo day (weekends, holidays, midsummer, opening)."""
    days = [cfg.expo_start + dt.timedelta(d) for d in range((cfg.expo_end - cfg.expo_start).days + 1)]
    w = np.ones(len(days))
    for i, d in enumerate(days):
        if d.weekday() >= 5:
            w[i] *= cfg.weekend_weight
        if d in cfg.holidays:
            w[i] *= cfg.holiday_weight
        if d == dt.date(d.year, 6, 24) or (d.month == 6 and d.weekday() == 4 and 19 <= d.day <= 25):
            w[i] = cfg.midsummer_eve_weight
        if i < 3:
            w[i] *= cfg.opening_days_weight
        if d > cfg.school_end:
            w[i] *= cfg.summer_holiday_weight
    return days, w


def build_population(cfg: WorldConfig, geo: Geography, scale: float, seed: int) -> Population:
    rng = np.random.default_rng([seed, 202])
    munis = geo.munis
    codes = munis["code"].to_list()
    host = codes.index(HOST_CODE)
    popn = munis["population"].to_numpy()
    n_muni = len(codes)
    share = np.clip(rng.normal(cfg.market_share_mean, cfg.market_share_sd, n_muni), 0.2, 0.65)

    # --- Swedes: every municipality's residents at scale ---------------------------------------
    n_by_muni = np.round(popn * scale).astype(np.int64)
    if not cfg.background_population:
        # only the host and the commuter belt are simulated in full; elsewhere 2 % (visitor pool)
        far = np.array([c != HOST_CODE and c not in cfg.commuter_share for c in codes])
        n_by_muni = np.where(far, np.round(n_by_muni * 0.02), n_by_muni).astype(np.int64)
    muni = np.repeat(np.arange(n_muni, dtype=np.int16), n_by_muni)
    n_se = len(muni)
    cls = np.full(n_se, BACKGROUND, np.int8)
    cls[muni == host] = RESIDENT
    home = np.full(n_se, -1, np.int32)
    # Helsingborg homes: a share lives inside each area, the rest in ordinary urban homes
    res = np.flatnonzero(muni == host)
    u = rng.random(len(res))
    home_area = np.full(len(res), -1, np.int8)
    edge = 0.0
    for i, zid in enumerate(("city_slottshagen", "oceanhamnen", "drottninghog")):
        s = cfg.home_share[zid]
        home_area[(u >= edge) & (u < edge + s)] = i
        edge += s
    for a in (-1, 0, 1, 2):
        cand = geo.hbg_homes[geo.hbg_home_area == a]
        m = home_area == a
        home[res[m]] = cand[rng.integers(0, len(cand), int(m.sum()))]
    # elsewhere: one of the municipality's home places
    oth = np.flatnonzero(muni != host)
    start = geo.muni_homes_start[muni[oth]]
    cnt = geo.muni_homes_count[muni[oth]]
    home[oth] = geo.muni_home_places[start + (rng.random(len(oth)) * cnt).astype(np.int64)]

    # occupation and workplaces
    occupation = np.zeros(n_se, np.int8)
    u = rng.random(n_se)
    occupation[u < cfg.employed_share] = 1
    occupation[(u >= cfg.employed_share) & (u < cfg.employed_share + cfg.student_share)] = 2
    work = np.full(n_se, -1, np.int32)
    w_area = rng.random(len(res))
    work_area = np.full(len(res), -1, np.int8)
    edge = 0.0
    for i, zid in enumerate(("city_slottshagen", "oceanhamnen", "drottninghog")):
        s = cfg.work_share[zid]
        work_area[(w_area >= edge) & (w_area < edge + s)] = i
        edge += s
    for a in (-1, 0, 1, 2):
        cand = geo.hbg_works[geo.hbg_work_area == a]
        m = (work_area == a) & (occupation[res] > 0)
        work[res[m]] = cand[rng.integers(0, len(cand), int(m.sum()))]
    # schools are ordinary (non-zone) work places near home: reuse general work places
    # some residents work outside Helsingborg (Malmö, Lund, Landskrona, Höganäs ...)
    out_codes = [c for c in ("1280", "1281", "1282", "1284", "1292") if c in codes]
    out = res[(occupation[res] == 1) & (rng.random(len(res)) < cfg.out_commuter_share)]
    oc = np.array([codes.index(c) for c in out_codes])[rng.integers(0, len(out_codes), len(out))]
    work[out] = geo.muni_home_places[geo.muni_homes_start[oc] + rng.integers(0, 5, len(out))]
    # commuters from the belt
    for code, s in cfg.commuter_share.items():
        if code not in codes:
            continue
        idx = np.flatnonzero(muni == codes.index(code))
        c = idx[rng.random(len(idx)) < s / max(cfg.employed_share, 1e-9)]
        c = c[occupation[c] == 1]
        cls[c] = COMMUTER
        cand = geo.hbg_works
        work[c] = cand[rng.integers(0, len(cand), len(c))]
    # other Swedes at work: a workplace is just another home place of their municipality
    rest = np.flatnonzero((work < 0) & (occupation > 0))
    work[rest] = geo.muni_home_places[
        geo.muni_homes_start[muni[rest]] + (rng.random(len(rest)) * geo.muni_homes_count[muni[rest]]).astype(np.int64)
    ]

    # --- domestic visitor trips: gravity model over municipalities ---------------------------
    ml = munis["lon"].to_numpy()
    mla = munis["lat"].to_numpy()
    dist = haversine_km(ml, mla, ml[host], mla[host])
    grav = popn * (np.exp(-dist / cfg.distance_decay_km) + cfg.gravity_floor)
    grav[host] = 0.0
    day_list, w_expo = expo_day_weights(cfg)
    base_days = [cfg.window_start + dt.timedelta(d) for d in range((cfg.expo_start - cfg.window_start).days)]
    trip_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for n_trips, days, wd in (
        (cfg.domestic_trips_expo, day_list, w_expo),
        (cfg.domestic_trips_baseline, base_days, None),
    ):
        if not days:
            continue
        n = cfg.scaled(n_trips, scale)
        tm = rng.choice(n_muni, size=n, p=grav / grav.sum())
        # a person of that municipality (a few make several trips: drawn with replacement)
        lo = np.searchsorted(muni, tm, side="left")
        hi = np.searchsorted(muni, tm, side="right")
        ok = hi > lo
        tm, lo, hi = tm[ok], lo[ok], hi[ok]
        person = lo + (rng.random(len(lo)) * (hi - lo)).astype(np.int64)
        p_over = np.clip(0.08 + dist[tm] / 400.0, 0.08, 0.9)
        over = rng.random(len(person)) < p_over
        length = np.where(over, 2 + rng.integers(0, 3, len(person)), 1)
        wp = np.ones(len(days)) if wd is None else wd
        sday = rng.choice(len(days), size=len(person), p=wp / wp.sum())
        sday = np.minimum(sday, len(days) - 1)
        start_ord = np.array([d.toordinal() for d in days])[sday]
        last_ord = days[-1].toordinal()
        length = np.minimum(length, last_ord - start_ord + 1)
        trip_parts.append((person, start_ord, length, np.where(length > 1, 0, -1)))
    cls_dom = np.concatenate([t[0] for t in trip_parts]) if trip_parts else np.zeros(0, np.int64)
    cls[cls_dom[cls[cls_dom] == BACKGROUND]] = DOMESTIC

    # --- international visitors ------------------------------------------------------------
    cw = np.array([c[3] for c in COUNTRIES])
    n_int_e = cfg.scaled(cfg.international_persons_expo, scale)
    n_int_b = cfg.scaled(cfg.international_persons_baseline, scale)
    n_int = n_int_e + n_int_b
    i_country = (1 + rng.choice(len(COUNTRIES), size=n_int, p=cw / cw.sum())).astype(np.int16)
    i_person = n_se + np.arange(n_int, dtype=np.int64)
    dk = i_country == 1 + [c[0] for c in COUNTRIES].index("DK")
    # Danes mostly come for the day (the ferry takes 20 minutes); others stay a few nights
    i_len = np.where(dk & (rng.random(n_int) < 0.75), 1, 1 + rng.integers(0, 4, n_int))
    i_start = np.empty(n_int, np.int64)
    ords_e = np.array([d.toordinal() for d in day_list])
    i_start[:n_int_e] = ords_e[rng.choice(len(day_list), size=n_int_e, p=w_expo / w_expo.sum())]
    if base_days and n_int_b:
        ords_b = np.array([d.toordinal() for d in base_days])
        i_start[n_int_e:] = ords_b[rng.integers(0, len(ords_b), n_int_b)]
    else:
        i_start[n_int_e:] = ords_e[rng.integers(0, len(ords_e), n_int_b)]
    i_len = np.minimum(i_len, cfg.window_end.toordinal() - i_start + 1)
    # a few internationals come twice (a second day trip a week later)
    trip_parts.append((i_person, i_start, i_len, np.where(i_len > 1, 0, -1)))
    again = np.flatnonzero(dk & (rng.random(n_int) < 0.15))
    a_start = np.minimum(i_start[again] + 7, cfg.window_end.toordinal())
    trip_parts.append((i_person[again], a_start, np.ones(len(again), np.int64), np.full(len(again), -1)))

    # --- machines ------------------------------------------------------------------------------
    n_mac = cfg.scaled(cfg.machines, scale)
    n_se + n_int + np.arange(n_mac)
    all_places = np.concatenate([geo.hbg_homes, geo.hbg_works])
    m_home = all_places[rng.integers(0, len(all_places), n_mac)]

    # --- assemble --------------------------------------------------------------------------------
    n_all = n_se + n_int + n_mac
    cls_all = np.concatenate([cls, np.full(n_int, INTERNATIONAL, np.int8), np.full(n_mac, MACHINE, np.int8)])
    muni_all = np.concatenate([muni, np.full(n_int, -1, np.int16), np.full(n_mac, host, np.int16)])
    country = np.concatenate([np.zeros(n_se, np.int16), i_country, np.zeros(n_mac, np.int16)])
    home_all = np.concatenate([home, np.full(n_int, -1, np.int32), m_home.astype(np.int32)])
    work_all = np.concatenate([work, np.full(n_int + n_mac, -1, np.int32)])
    occ_all = np.concatenate([occupation, np.zeros(n_int + n_mac, np.int8)])
    sub = np.empty(n_all, bool)
    sub[:n_se] = rng.random(n_se) < share[muni]
    rshare = np.array([0.0] + [c[4] for c in COUNTRIES])
    sub[n_se : n_se + n_int] = rng.random(n_int) < rshare[i_country]
    sub[n_se + n_int :] = True  # machine SIMs of the operator's IoT contracts
    tac = rng.integers(0, len(HANDSET_TACS), n_all).astype(np.int16)
    mtac = len(HANDSET_TACS) + rng.integers(0, len(IOT_TACS), n_mac)
    mtac = np.where(rng.random(n_mac) < cfg.machine_no_tac_share, -1, mtac)
    # some machines carry a handset TAC (a phone used as an alarm): only behaviour tells
    tac[n_se + n_int :] = mtac
    period = np.zeros(n_all, np.int32)
    period[n_se + n_int :] = rng.choice([900, 1800, 3600, 3600, 7200], size=n_mac)

    # IMSIs: operator subscribers get 240-01, other Swedes another Swedish MNC, foreigners theirs
    prefixes = ["240" + cfg.operator_mnc] + [c[1] + c[2] for c in COUNTRIES] + ["240" + m for m in OTHER_SE_MNC]
    pidx = country.astype(np.int16).copy()
    se_other = (country == 0) & ~sub
    pidx[se_other] = 1 + len(COUNTRIES) + rng.integers(0, len(OTHER_SE_MNC), int(se_other.sum()))
    plen = np.array([len(p) for p in prefixes], np.int8)[pidx]
    # 15 digits in total, except a few networks that use 14-digit IMSIs
    digits = (15 - plen).astype(np.int8)
    fourteen = np.isin(country, [COUNTRY_ISO2.index(c) for c in ("IN", "PK", "EG")])
    digits[fourteen] -= 1
    msin = _msin(n_all, 10, seed * 7 + 13)
    imsi = _imsi_strings(prefixes, pidx, msin, digits)
    del pidx, plen, digits, msin

    allp = [t[0] for t in trip_parts]
    trips = Trips(
        person=np.concatenate(allp).astype(np.int64),
        start=np.concatenate([t[1] for t in trip_parts]).astype(np.int32),
        days=np.concatenate([t[2] for t in trip_parts]).astype(np.int16),
        hotel=np.concatenate([t[3] for t in trip_parts]).astype(np.int32),
    )
    over = trips.hotel >= 0
    trips.hotel[over] = geo.hotels[rng.integers(0, len(geo.hotels), int(over.sum()))]
    return Population(
        cls=cls_all,
        muni=muni_all,
        country=country,
        subscriber=sub,
        home=home_all,
        work=work_all,
        occupation=occ_all,
        tac=tac,
        machine_period=period,
        imsi=imsi,
        trips=trips,
        share_by_muni=share,
    )


def persons_frame(pop: Population, geo: Geography, event_host_code: str = HOST_CODE) -> pl.DataFrame:
    """The truth table of persons (one row per simulated person, machines included)."""
    host = geo.munis["code"].to_list().index(event_host_code)
    vclass = np.where(pop.country > 0, 2, np.where(pop.muni == host, 0, 1)).astype(np.int8)
    vclass[pop.cls == MACHINE] = 3
    codes = [*geo.munis["code"].to_list(), None]
    muni = np.where((pop.muni >= 0) & (pop.country == 0), pop.muni, len(codes) - 1)

    def lookup(values: list, idx: np.ndarray) -> pl.Series:
        return pl.Series(values, dtype=pl.String).gather(pl.Series(idx.astype(np.uint32)))

    return pl.DataFrame(
        {
            "person_id": np.arange(pop.n, dtype=np.int64),
            "imsi": pl.from_arrow(pop.imsi),
            "is_subscriber": pop.subscriber,
            "person_class": lookup(list(PERSON_CLASSES), pop.cls),
            "visitor_class": lookup([*VISITOR_CLASSES, None], vclass),
            "home_municipality": lookup(codes, muni),
            "origin_country": lookup(list(COUNTRY_ISO2), pop.country),
            "tac": lookup([*TACS, None], np.where(pop.tac >= 0, pop.tac, len(TACS))),
        }
    )
