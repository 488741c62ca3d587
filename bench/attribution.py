"""Zone attribution experiments: how many true visits each rule finds (docs/methodology.md).

    python bench/attribution.py --world /tmp/s02 [--days 2022-05-10 2022-06-11 2022-06-25]
                                [--rules current ceiling model model_em]

`--world` is a folder with `warehouse.duckdb` (a materialised world), `truth/` and `key` (the
pseudonym key it was built with), as `crowd-platform simulate` + `materialize` leave them. For each
day the visits of subscribers (at least 20 minutes) are rebuilt from the same `core.stays` under each
rule and matched device by device against the truth; the table gives per zone and day the truth,
the estimate, the relative error, recall and precision. An experiment, not a pipeline step:

- `current`: the pipeline's rule (footprint weight >= 0.5 or a small cell standing in the zone).
- `ceiling`: the same yes/no rule on weights measured from the truth (each cell's share of stay
  time spent by devices truly in the zone, from four other days): the best any per-cell rule can do.
- `model`: a best-server tile model (log-distance path loss, 3GPP horizontal antenna pattern, a
  softmax dominance spread) with a uniform prior on land; a stay is in a zone when
  P(zone | its cell and the most frequent other cell within 15 minutes) >= 0.5.
- `model_em`: the same with the prior density over tiles estimated from the day's cell counts by
  expectation maximisation. Slow (minutes per day): it evaluates every cell pair on every tile.
- `model_pair_em`: the prior estimated from the day's counts of (cell, other cell) pairs instead, on
  50 m tiles, with the dominance spread given by `--dominance-db` (compare their log-likelihoods).
- `model_oracle`: the tile model under a uniform prior with the simulator's own serving-cell rule
  instead of the generic radio model: not a method (a real network's physics is unknown), the ceiling
  of what the pair of cells can tell.
- `model_oracle_em`: the same with the prior density estimated from the day's (cell, other cell) pair
  counts (as `model_pair_em`): whether the simulator's physics plus a day's prior would be enough.
- `oracle_fingerprint`: the simulator's physics, each stay placed by *every* cell the device used within
  15 minutes of it (not a pair), uniform prior; `oracle_fingerprint_places`: the same with a prior on
  the simulator's own places (`--seed` of the world), what an exact building register would give;
  `oracle_fingerprint_grid`: the homes only, counted on 250 m squares, what a published population grid
  would give. Diagnostics of the information in the data, not methods.
- `home_cells_excluded`: `current`, leaving out stays at cells where the device spent at least two of
  the previous eight nights (a person at home near a zone is not visiting it).
- `bridged`: `current`, with episodes that tolerate up to `--bridge-min` minutes at other cells between
  two stays in the zone (ping-pong to a neighbouring cell while standing in the zone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from scipy import sparse

from crowd_platform.pseudonym import pseudonymise
from crowd_platform.warehouse import spatial_extension_path

CONTEXT_WINDOW_MIN = 15
CEILING_DAYS = ["2022-05-14", "2022-05-17", "2022-06-04", "2022-06-18"]

EPISODES_TO_VISITS = """
    breaks AS (
        SELECT *, CASE WHEN a > $bridge_us + coalesce(max(b) OVER (PARTITION BY device_key, zone_id ORDER BY a, b
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), -1e18) THEN 1 ELSE 0 END AS starts_episode
        FROM stays_in_zone
    ),
    episodes AS (
        SELECT device_key, zone_id, min(a) AS a, max(b) AS b
        FROM (SELECT *, sum(starts_episode) OVER (PARTITION BY device_key, zone_id ORDER BY a, b
                        ROWS UNBOUNDED PRECEDING) AS episode FROM breaks)
        GROUP BY device_key, zone_id, episode
    )
    SELECT DISTINCT device_key, zone_id FROM episodes
    WHERE CAST(make_timestamptz(a) AS DATE) = $day AND b - a >= 1200e6
      AND device_key NOT IN (SELECT device_key FROM wh.core.devices WHERE is_machine AND event_date = $day)
"""


def connect(world: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"LOAD '{spatial_extension_path()}'")
    con.execute(f"ATTACH '{world / 'warehouse.duckdb'}' AS wh (READ_ONLY)")
    con.execute("SET TimeZone = 'Europe/Stockholm'")
    return con


def truth_visits(world: Path, days: list[str], key: bytes, min_dwell_s: int = 1200) -> pl.DataFrame:
    files = [f for day in days for f in glob.glob(str(world / "truth" / "visits" / f"date={day}" / "*.parquet"))]
    visits = pl.read_parquet(files).filter(pl.col("is_subscriber") & (pl.col("dwell_s") >= min_dwell_s))
    keys = pseudonymise(key, visits["imsi"].to_list())
    return visits.with_columns(pl.Series("device_key", keys, dtype=pl.String)).drop("imsi")


NIGHT_CELLS = """
    CREATE OR REPLACE TEMP TABLE night_cells AS
    SELECT device_key, place AS cell_id
    FROM wh.core.stays
    WHERE event_date BETWEEN $day - 8 AND $day - 1
      AND (hour(stay_start) < 5 OR hour(stay_end) < 5 OR stay_end - stay_start > INTERVAL 8 HOUR)
    GROUP BY ALL
    HAVING count(DISTINCT CAST(stay_start - INTERVAL 6 HOUR AS DATE)) >= 2
"""


def rule_visits(
    con: duckdb.DuckDBPyConnection, day: str, weights: str, condition: str, bridge_min: float = 0
) -> pl.DataFrame:
    query = f"""
    WITH stays_in_zone AS (
        SELECT stays.device_key, weights.zone_id, epoch_us(stays.stay_start) AS a, epoch_us(stays.stay_end) AS b
        FROM wh.core.stays AS stays
        JOIN {weights} AS weights ON weights.cell_id = stays.place
        WHERE stays.event_date BETWEEN $day - 1 AND $day + 1 AND {condition}
    ),
    {EPISODES_TO_VISITS}"""
    return con.execute(query, {"day": dt.date.fromisoformat(day), "bridge_us": int(bridge_min * 60e6)}).pl()


def measured_weights(con: duckdb.DuckDBPyConnection, world: Path, key: bytes) -> None:
    """Table `measured`: each cell's share of stay time spent by devices truly in each zone."""
    truth = truth_visits(world, CEILING_DAYS, key, min_dwell_s=0).select(
        "device_key", "zone_id", "visit_start", "visit_end"
    )
    con.register("truth_presence", truth.to_arrow())
    con.execute(
        """
        CREATE OR REPLACE TABLE measured AS
        WITH stays AS (
            SELECT device_key, place, stay_start, stay_end, epoch(stay_end - stay_start) AS seconds
            FROM wh.core.stays WHERE event_date IN (SELECT unnest(CAST($days AS DATE[])))
        ),
        per_cell AS (SELECT place, sum(seconds) AS seconds FROM stays GROUP BY place),
        in_zone AS (
            SELECT stays.place, truth.zone_id,
                   sum(epoch(least(stays.stay_end, truth.visit_end)
                             - greatest(stays.stay_start, truth.visit_start))) AS seconds
            FROM stays JOIN truth_presence AS truth
              ON truth.device_key = stays.device_key
             AND truth.visit_start < stays.stay_end AND truth.visit_end > stays.stay_start
            GROUP BY ALL
        )
        SELECT in_zone.place AS cell_id, in_zone.zone_id, in_zone.seconds / per_cell.seconds AS weight
        FROM in_zone JOIN per_cell USING (place)
        """,
        {"days": CEILING_DAYS},
    )


class TileModel:
    """P(cell | tile) on a square grid around the zones, from a generic radio model; or, with
    `oracle_physics`, from the simulator's own serving-cell rule (a diagnostic: what two cells could tell
    if the radio model were exactly right)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        day: str,
        tile_m: float = 25.0,
        path_loss_exponent: float = 3.5,
        dominance_db: float = 4.0,
        margin_m: float = 1500.0,
        oracle_physics: bool = False,
    ) -> None:
        x_min, x_max, y_min, y_max = con.execute(
            "SELECT ST_XMin(ST_Extent_Agg(geometry)), ST_XMax(ST_Extent_Agg(geometry)), "
            "ST_YMin(ST_Extent_Agg(geometry)), ST_YMax(ST_Extent_Agg(geometry)) FROM wh.reference.zones"
        ).fetchone()
        m_per_lon = 111_320 * np.cos(np.radians((y_min + y_max) / 2))
        m_per_lat = 110_574.0
        x0, x1 = x_min - margin_m / m_per_lon, x_max + margin_m / m_per_lon
        y0, y1 = y_min - margin_m / m_per_lat, y_max + margin_m / m_per_lat
        lon, lat = np.meshgrid(np.arange(x0, x1, tile_m / m_per_lon), np.arange(y0, y1, tile_m / m_per_lat))
        lon, lat = lon.ravel(), lat.ravel()
        self.tile_lon, self.tile_lat = lon, lat
        con.register("tiles", pl.DataFrame({"tile": np.arange(len(lon)), "lon": lon, "lat": lat}).to_arrow())
        self.zone_ids = [row[0] for row in con.execute("SELECT zone_id FROM wh.reference.zones ORDER BY 1").fetchall()]
        self.in_zone = np.zeros((len(lon), len(self.zone_ids)), np.float32)
        for tile, zone_id in con.execute(
            "SELECT tiles.tile, zones.zone_id FROM tiles JOIN wh.reference.zones AS zones "
            "ON ST_Contains(zones.geometry, ST_Point(tiles.lon, tiles.lat))"
        ).fetchall():
            self.in_zone[tile, self.zone_ids.index(zone_id)] = 1
        on_land = (
            con.execute(
                "SELECT tile FROM tiles WHERE EXISTS (SELECT 1 FROM wh.reference.municipalities AS m "
                "WHERE ST_Contains(m.geometry, ST_Point(tiles.lon, tiles.lat)))"
            )
            .pl()["tile"]
            .to_numpy()
        )
        self.land_prior = np.zeros(len(lon), np.float32)
        self.land_prior[on_land] = 1
        self.land_prior[self.in_zone.sum(axis=1) > 0] = 1
        self.land_prior /= self.land_prior.sum()
        cells = con.execute(
            "SELECT cell_id, longitude, latitude, azimuth_deg, beamwidth_deg, range_m, "
            "valid_to IS NOT NULL AS temporary FROM wh.reference.cells "
            "WHERE valid_from <= $day AND (valid_to IS NULL OR valid_to >= $day) "
            "AND longitude BETWEEN $x0 - 0.1 AND $x1 + 0.1 AND latitude BETWEEN $y0 - 0.06 AND $y1 + 0.06 "
            "ORDER BY cell_id",
            {"day": dt.date.fromisoformat(day), "x0": x0, "x1": x1, "y0": y0, "y1": y1},
        ).pl()
        self.cell_ids = cells["cell_id"].to_list()
        cell_x, cell_y = (
            (cells["longitude"].to_numpy() - x0) * m_per_lon,
            (cells["latitude"].to_numpy() - y0) * m_per_lat,
        )
        tile_x, tile_y = (lon - x0) * m_per_lon, (lat - y0) * m_per_lat
        azimuth = cells["azimuth_deg"].fill_null(np.nan).to_numpy()
        beam = cells["beamwidth_deg"].fill_null(360).to_numpy()
        reach = cells["range_m"].to_numpy()
        omni = np.isnan(azimuth) | (beam >= 360)
        if oracle_physics:
            self.p_cell = oracle_cell_probabilities(np.c_[tile_x, tile_y], np.c_[cell_x, cell_y], cells)
            return
        self.p_cell = np.empty((len(lon), len(cells)), np.float32)
        for start in range(0, len(lon), 4000):
            rows = slice(start, start + 4000)
            dx, dy = tile_x[rows, None] - cell_x[None, :], tile_y[rows, None] - cell_y[None, :]
            signal_db = -10 * path_loss_exponent * np.log10(np.maximum(np.hypot(dx, dy), 10.0) / reach[None, :])
            off_axis = np.abs((np.degrees(np.arctan2(dx, dy)) - azimuth[None, :] + 180) % 360 - 180)
            signal_db -= np.where(omni[None, :], 0.0, np.minimum(12 * (off_axis / beam[None, :]) ** 2, 20.0))
            score = signal_db / dominance_db
            score -= score.max(axis=1, keepdims=True)
            weight = np.exp(score)
            self.p_cell[rows] = weight / weight.sum(axis=1, keepdims=True)

    def em_prior(self, cell_counts: np.ndarray, iterations: int = 60) -> np.ndarray:
        """Density over tiles that best explains the observed counts per cell (Richardson-Lucy)."""
        prior = self.land_prior.copy()
        share = cell_counts / cell_counts.sum()
        for _ in range(iterations):
            expected = prior @ self.p_cell
            prior = prior * (self.p_cell @ np.where(expected > 0, share / np.maximum(expected, 1e-20), 0))
            prior /= prior.sum()
        return prior

    def pair_em_prior(self, pairs: pl.DataFrame, iterations: int = 40) -> tuple[np.ndarray, float]:
        """Density over tiles that best explains the counts `n` of (place, other) pairs; and the mean
        log-likelihood per pair, to compare dominance spreads."""
        index = {cell: i for i, cell in enumerate(self.cell_ids)}
        first = np.array([index.get(cell, -1) for cell in pairs["place"]])
        second = np.array([index.get(cell, -1) if cell is not None else -1 for cell in pairs["other"]])
        known = first >= 0
        first, second, counts = first[known], second[known], pairs["n"].to_numpy()[known].astype(float)
        # sparse (tiles x pairs): the oracle's P(cell | tile) is zero beyond a tile's four best cells,
        # and a dense matrix of every pair on every tile does not fit in memory
        p_cell = sparse.csc_matrix(np.where(self.p_cell >= 1e-6, self.p_cell, 0))
        has_second = second >= 0
        of_first = p_cell[:, first]
        paired = of_first.multiply(p_cell[:, np.where(has_second, second, 0)]).multiply(has_second[None, :])
        alone = of_first.multiply(~has_second[None, :])
        likelihood = sparse.csc_matrix(paired) + sparse.csc_matrix(alone)
        likelihood_t = likelihood.T.tocsr()
        prior, mean_loglik = self.land_prior.copy(), 0.0
        for _ in range(iterations):
            expected = np.maximum(likelihood_t @ prior, 1e-30)
            mean_loglik = float((counts * np.log(expected)).sum() / counts.sum())
            prior = prior * (likelihood @ (counts / expected))
            prior /= prior.sum()
        return prior, mean_loglik

    def zone_posteriors(self, prior: np.ndarray, pairs: pl.DataFrame) -> pl.DataFrame:
        """P(zone | cell, other cell) for each (place, other) row; other may be null."""
        index = {cell: i for i, cell in enumerate(self.cell_ids)}
        first = np.array([index.get(cell, -1) for cell in pairs["place"]])
        second = np.array([index.get(cell, -1) if cell is not None else -1 for cell in pairs["other"]])
        out = np.full((len(pairs), len(self.zone_ids)), np.nan, np.float32)
        for start in range(0, len(pairs), 2000):
            rows = np.arange(start, min(start + 2000, len(pairs)))
            rows = rows[first[rows] >= 0]
            if not len(rows):
                continue
            joint = self.p_cell[:, first[rows]] * prior[:, None]
            has_second = second[rows] >= 0
            joint[:, has_second] *= self.p_cell[:, second[rows][has_second]]
            out[rows] = (joint.T @ self.in_zone) / np.maximum(joint.sum(axis=0), 1e-30)[:, None]
        frame = pairs.hstack(pl.DataFrame(out, schema=self.zone_ids))
        return frame.unpivot(index=["place", "other"], variable_name="zone_id", value_name="p").filter(
            pl.col("p") >= 0.05
        )


def oracle_cell_probabilities(tile_xy: np.ndarray, cell_xy: np.ndarray, cells: pl.DataFrame) -> np.ndarray:
    """P(cell | tile) as the simulator draws serving cells at a fixed place: its score, the four best
    cells, softmax at its temperature. The simulator's hidden bonus (small and temporary cells) is
    recognised from the reference data (range, valid_to)."""
    from crowd_platform.simulate.geography import _cell_scores

    reach = cells["range_m"].to_numpy().astype(float)
    arrays = {
        "range_m": reach,
        "azimuth": cells["azimuth_deg"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        "beamwidth": cells["beamwidth_deg"].cast(pl.Float64).fill_null(360.0).to_numpy(),
        "bonus": np.where(reach <= 150, 1.0, np.where(cells["temporary"].to_numpy(), 0.5, 0.0)),
    }
    out = np.zeros((len(tile_xy), len(cells)), np.float32)
    for start in range(0, len(tile_xy), 4000):
        rows = slice(start, start + 4000)
        candidates = np.broadcast_to(np.arange(len(cells)), (len(tile_xy[rows]), len(cells)))
        score = _cell_scores(tile_xy[rows], candidates, arrays, cell_xy)
        best = np.argpartition(-score, 4, axis=1)[:, :4]
        top = np.take_along_axis(score, best, axis=1)
        weight = np.exp((top - top.max(axis=1, keepdims=True)) / 0.8)
        np.put_along_axis(out[rows], best, (weight / weight.sum(axis=1, keepdims=True)).astype(np.float32), axis=1)
    return out


def model_visits(con: duckdb.DuckDBPyConnection, day: str, model: TileModel, prior_from: str) -> pl.DataFrame:
    """Visits under the tile model; the prior is uniform on land (`land`), or estimated from the day's
    cell counts (`cells`) or (cell, other cell) pair counts (`pairs`)."""
    window_us = CONTEXT_WINDOW_MIN * 60 * 1_000_000
    con.execute(
        f"""
        CREATE OR REPLACE TABLE stays_with_context AS
        WITH stays AS (
            SELECT device_key, place, epoch_us(stay_start) AS a, epoch_us(stay_end) AS b,
                   (epoch_us(stay_start) + epoch_us(stay_end)) // 2 AS middle, n_events
            FROM wh.core.stays WHERE event_date BETWEEN $day - 1 AND $day + 1
        ),
        most_frequent_other AS (
            SELECT stays.device_key, stays.place, stays.a, other.place AS other
            FROM stays JOIN stays AS other
              ON other.device_key = stays.device_key AND other.place <> stays.place
             AND other.middle BETWEEN stays.middle - {window_us} AND stays.middle + {window_us}
            GROUP BY stays.device_key, stays.place, stays.a, other.place
            QUALIFY row_number() OVER (PARTITION BY stays.device_key, stays.place, stays.a
                                       ORDER BY sum(least(other.n_events, 3)) DESC, other.place) = 1
        )
        SELECT stays.device_key, stays.place, stays.a, stays.b, stays.n_events, most_frequent_other.other
        FROM stays LEFT JOIN most_frequent_other USING (device_key, place, a)
        """,
        {"day": dt.date.fromisoformat(day)},
    )
    prior = model.land_prior
    if prior_from == "pairs":
        pair_counts = con.execute(
            "SELECT place, other, count(*) AS n FROM stays_with_context "
            "WHERE CAST(make_timestamptz(a) AS DATE) = $day GROUP BY ALL",
            {"day": dt.date.fromisoformat(day)},
        ).pl()
        prior, mean_loglik = model.pair_em_prior(pair_counts)
        print(f"{day}: mean log-likelihood per pair {mean_loglik:.3f}", file=sys.stderr)
    if prior_from == "cells":
        counts = dict(con.execute(
            "SELECT place, sum(n_events) FROM stays_with_context "
            "WHERE CAST(make_timestamptz(a) AS DATE) = $day GROUP BY place",
            {"day": dt.date.fromisoformat(day)},
        ).fetchall())  # fmt: skip
        prior = model.em_prior(np.array([counts.get(cell, 0) for cell in model.cell_ids], np.float32))
    pairs = con.execute(
        "SELECT DISTINCT place, other FROM stays_with_context "
        "WHERE place IN (SELECT unnest(CAST($cells AS VARCHAR[])))",
        {"cells": model.cell_ids},
    ).pl()
    con.register("pair_zone", model.zone_posteriors(prior, pairs).to_arrow())
    query = f"""
    WITH stays_in_zone AS (
        SELECT stays.device_key, pair_zone.zone_id, stays.a, stays.b
        FROM stays_with_context AS stays
        JOIN pair_zone ON pair_zone.place = stays.place AND pair_zone.other IS NOT DISTINCT FROM stays.other
        WHERE pair_zone.p >= 0.5
    ),
    {EPISODES_TO_VISITS}"""
    return con.execute(query, {"day": dt.date.fromisoformat(day), "bridge_us": 0}).pl()


def place_prior(model: TileModel, seed: int, grid_m: float | None = None) -> np.ndarray:
    """Diagnostic prior from the simulator's own places, plus a little on all land. Without `grid_m`:
    every place (homes, workplaces, spots, ...) on its tile, what an exact building register would give.
    With `grid_m`: only the homes, counted per square of that size and spread evenly over its tiles,
    what a published population grid (SCB's 250 m squares) would give."""
    from scipy.spatial import cKDTree

    from crowd_platform.simulate.config import WorldConfig
    from crowd_platform.simulate.geography import HOME, build_geography

    config = WorldConfig()
    geo = build_geography(seed, config.expo_start, config.expo_end, config.helsingborg_population,
                          config.sweden_population)  # fmt: skip
    # the model's own tiles: the registered `tiles` table belongs to whichever model was built last
    tiles = {"lon": model.tile_lon, "lat": model.tile_lat}
    shrink = np.cos(np.radians(float(np.mean(tiles["lat"]))))
    if grid_m is None:
        _, nearest = cKDTree(np.c_[tiles["lon"] * shrink, tiles["lat"]]).query(
            np.c_[geo.place_lon * shrink, geo.place_lat]
        )
        weight = np.bincount(nearest, minlength=len(tiles["lon"])).astype(float)
    else:

        def square(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
            return np.floor(lat * 110_574 / grid_m).astype(np.int64) * 1_000_000 + np.floor(
                lon * 111_320 * shrink / grid_m
            ).astype(np.int64)

        homes = geo.place_kind == HOME
        home_squares, homes_in_square = np.unique(
            square(geo.place_lon[homes], geo.place_lat[homes]), return_counts=True
        )
        tile_squares = square(tiles["lon"], tiles["lat"])
        squares, tiles_in_square = np.unique(tile_squares, return_counts=True)
        per_tile = dict(zip(squares.tolist(), tiles_in_square.tolist(), strict=True))
        homes_of = dict(zip(home_squares.tolist(), homes_in_square.tolist(), strict=True))
        weight = np.array([homes_of.get(sq, 0) / per_tile[sq] for sq in tile_squares.tolist()])
    weight += 0.01 * weight[weight > 0].mean() * (model.land_prior > 0)
    return (weight / weight.sum()).astype(np.float32)


def fingerprint_visits(
    con: duckdb.DuckDBPyConnection, day: str, model: TileModel, prior: np.ndarray, outlier_share: float = 0.02
) -> pl.DataFrame:
    """Visits when each stay is placed by every cell the device used within 15 minutes of its middle
    (a multinomial likelihood with a small share of outliers, on the tiles the stay's own cell can
    serve) instead of a pair of cells."""
    index = {cell: i for i, cell in enumerate(model.cell_ids)}
    con.register("model_cells", pl.DataFrame({"cell_id": model.cell_ids}).to_arrow())
    window_us = CONTEXT_WINDOW_MIN * 60 * 1_000_000
    contexts = con.execute(
        f"""
        WITH stays AS (
            SELECT device_key, place, epoch_us(stay_start) AS a, epoch_us(stay_end) AS b
            FROM wh.core.stays
            WHERE event_date BETWEEN $day - 1 AND $day + 1 AND place IN (SELECT cell_id FROM model_cells)
        ),
        events AS (
            SELECT device_key, epoch_us(event_time) AS t, cell_id
            FROM wh.staging.events WHERE event_date BETWEEN $day - 1 AND $day + 1
        )
        SELECT stays.device_key, stays.a, stays.b,
               stays.place || '|' || string_agg(events.cell_id, ',' ORDER BY events.cell_id) AS fingerprint
        FROM stays JOIN events
          ON events.device_key = stays.device_key
         AND events.t BETWEEN least(stays.a, (stays.a + stays.b) // 2 - {window_us})
                          AND greatest(stays.b, (stays.a + stays.b) // 2 + {window_us})
        GROUP BY stays.device_key, stays.place, stays.a, stays.b
        """,
        {"day": dt.date.fromisoformat(day)},
    ).pl()
    log_p = np.log(outlier_share / len(model.cell_ids) + (1 - outlier_share) * model.p_cell.astype(np.float64))
    posterior: dict[str, np.ndarray] = {}
    for fingerprint in contexts["fingerprint"].unique().to_list():
        place, cells = fingerprint.split("|")
        tiles = np.flatnonzero(model.p_cell[:, index[place]] > 1e-4)
        used = [index[cell] for cell in cells.split(",") if cell in index]
        posterior[fingerprint] = np.zeros(len(model.zone_ids))
        if len(tiles):
            log_likelihood = log_p[np.ix_(tiles, used)].sum(axis=1)
            weight = np.exp(log_likelihood - log_likelihood.max()) * prior[tiles]
            if weight.sum() > 0:
                posterior[fingerprint] = (weight @ model.in_zone[tiles]) / weight.sum()
    p_zone = np.stack([posterior[f] for f in contexts["fingerprint"]]).astype(np.float32)
    stays_in_zone = (
        contexts.select("device_key", "a", "b")
        .hstack(pl.DataFrame(p_zone, schema=model.zone_ids))
        .unpivot(index=["device_key", "a", "b"], variable_name="zone_id", value_name="p")
        .filter(pl.col("p") >= 0.5)
        .select("device_key", "zone_id", "a", "b")
    )
    con.register("stays_in_zone", stays_in_zone.to_arrow())
    return con.execute(f"WITH {EPISODES_TO_VISITS}", {"day": dt.date.fromisoformat(day), "bridge_us": 0}).pl()


def score(truth: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    joined = (
        truth.select("device_key", "zone_id", t=pl.lit(1))
        .unique()
        .join(found.with_columns(p=pl.lit(1)), on=["device_key", "zone_id"], how="full", coalesce=True)
    )
    return (
        joined.group_by("zone_id")
        .agg(
            truth=pl.col("t").sum(),
            estimate=pl.col("p").sum(),
            hits=(pl.col("t").is_not_null() & pl.col("p").is_not_null()).sum(),
        )
        .with_columns(
            error=(pl.col("estimate") / pl.col("truth") - 1).round(3),
            recall=(pl.col("hits") / pl.col("truth")).round(2),
            precision=(pl.col("hits") / pl.col("estimate")).round(2),
        )
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--days", nargs="+", default=["2022-05-10", "2022-06-11", "2022-06-25"])
    parser.add_argument("--rules", nargs="+", default=["current", "ceiling"],
                        choices=["current", "ceiling", "model", "model_em", "model_pair_em", "model_oracle",
                                 "model_oracle_em", "oracle_fingerprint", "oracle_fingerprint_places",
                                 "oracle_fingerprint_grid", "home_cells_excluded", "bridged"])  # fmt: skip
    parser.add_argument("--dominance-db", type=float, default=4.0, help="model_pair_em's dominance spread")
    parser.add_argument("--bridge-min", type=float, default=20.0, help="bridged: minutes at other cells")
    parser.add_argument("--seed", type=int, default=42, help="the world's seed (oracle_fingerprint_places/_grid)")
    args = parser.parse_args()
    key = (args.world / "key").read_text().strip().encode()
    con = connect(args.world)
    if "ceiling" in args.rules:
        measured_weights(con, args.world, key)
    models: dict[tuple[bool, tuple], TileModel] = {}
    results = []
    for day in args.days:
        truth = truth_visits(args.world, [day], key)
        for rule in args.rules:
            current_rule = "(weights.weight >= 0.5 OR weights.site_in_zone)"
            if rule == "current":
                found = rule_visits(con, day, "wh.reference.cell_zone_weights", current_rule)
            elif rule == "home_cells_excluded":
                con.execute(NIGHT_CELLS, {"day": dt.date.fromisoformat(day)})
                found = rule_visits(
                    con, day, "wh.reference.cell_zone_weights",
                    f"{current_rule} AND NOT EXISTS (SELECT 1 FROM night_cells WHERE night_cells.device_key = "
                    "stays.device_key AND night_cells.cell_id = stays.place)",
                )  # fmt: skip
            elif rule == "bridged":
                found = rule_visits(con, day, "wh.reference.cell_zone_weights", current_rule, args.bridge_min)
            elif rule == "ceiling":
                found = rule_visits(con, day, "measured", "weights.weight >= 0.5")
            else:
                # one tile model per physics and expo state (temporary expo cells are on air), shared by rules
                physics = {
                    "model_pair_em": {"tile_m": 50.0, "dominance_db": args.dominance_db},
                    "model_oracle": {"oracle_physics": True},
                    "model_oracle_em": {"oracle_physics": True},
                }.get(rule, {"oracle_physics": True} if rule.startswith("oracle_fingerprint") else {})
                key_ = (day >= "2022-05-30", tuple(sorted(physics.items())))
                if key_ not in models:
                    models[key_] = TileModel(con, day, **physics)
                model = models[key_]
                if rule.startswith("oracle_fingerprint"):
                    prior = model.land_prior
                    if rule != "oracle_fingerprint":
                        prior = place_prior(model, args.seed, grid_m=250.0 if rule.endswith("grid") else None)
                    found = fingerprint_visits(con, day, model, prior)
                else:
                    prior_from = {"model_em": "cells", "model_pair_em": "pairs", "model_oracle_em": "pairs"}
                    found = model_visits(con, day, model, prior_from.get(rule, "land"))
            results.append(score(truth, found).with_columns(day=pl.lit(day), rule=pl.lit(rule)))
            print(f"{day} {rule} done", file=sys.stderr)
    table = pl.concat(results).filter(pl.col("truth") + pl.col("estimate").fill_null(0) > 0)
    with pl.Config(tbl_rows=500, tbl_cols=20):
        print(
            table.sort("zone_id", "day", "rule").select(
                "zone_id", "day", "rule", "truth", "estimate", "error", "recall", "precision"
            )
        )


if __name__ == "__main__":
    main()
