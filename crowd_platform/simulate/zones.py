"""The H22 zones: three main expo areas and five venues nested in them, at their real places.

Polygons are hand-drawn approximations (lon, lat in WGS84) of the areas named in the press
release. Venues are small polygons inside their area; a venue visit is also an area visit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Zone:
    zone_id: str
    name: str
    kind: str  # "area" | "venue"
    parent_zone_id: str | None
    polygon: tuple[tuple[float, float], ...]  # closed ring of (lon, lat)


def _box(lon: float, lat: float, dlon: float, dlat: float) -> tuple[tuple[float, float], ...]:
    return (
        (lon - dlon, lat - dlat),
        (lon + dlon, lat - dlat),
        (lon + dlon, lat + dlat),
        (lon - dlon, lat + dlat),
        (lon - dlon, lat - dlat),
    )


ZONES: tuple[Zone, ...] = (
    # The centre: Stortorget, Kärnan, the pedestrian streets, Norra hamnen's south end and the
    # Slottshagen park north-east of Kärnan. The southern edge stops just north of Knutpunkten.
    Zone(
        "city_slottshagen",
        "City & Slottshagen",
        "area",
        None,
        (
            (12.6886, 56.0444),
            (12.6985, 56.0442),
            (12.7032, 56.0452),
            (12.7066, 56.0482),
            (12.7056, 56.0514),
            (12.6990, 56.0522),
            (12.6905, 56.0507),
            (12.6878, 56.0472),
            (12.6886, 56.0444),
        ),
    ),
    # The new harbour district on the pier south-west of Knutpunkten.
    Zone(
        "oceanhamnen",
        "Oceanhamnen",
        "area",
        None,
        (
            (12.6830, 56.0375),
            (12.6905, 56.0371),
            (12.6942, 56.0395),
            (12.6946, 56.0424),
            (12.6900, 56.0431),
            (12.6840, 56.0420),
            (12.6830, 56.0375),
        ),
    ),
    # The north-eastern residential district (million-programme estate under renewal).
    Zone(
        "drottninghog",
        "Drottninghög",
        "area",
        None,
        (
            (12.7200, 56.0600),
            (12.7330, 56.0595),
            (12.7365, 56.0630),
            (12.7340, 56.0665),
            (12.7230, 56.0668),
            (12.7190, 56.0635),
            (12.7200, 56.0600),
        ),
    ),
    Zone("magasin_405", "Magasin 405", "venue", "oceanhamnen", _box(12.6905, 56.0400, 0.0006, 0.0003)),
    Zone("havoteket", "Havoteket", "venue", "oceanhamnen", _box(12.6862, 56.0388, 0.0005, 0.00025)),
    Zone(
        "helsingborgsrummet", "Helsingborgsrummet", "venue", "city_slottshagen", _box(12.6925, 56.0456, 0.0004, 0.0002)
    ),
    Zone("lagenheten_1972", "1972-lägenheten", "venue", "drottninghog", _box(12.7275, 56.0630, 0.0003, 0.00015)),
    Zone(
        "the_sounds", "The Sounds in Slottshagen", "venue", "city_slottshagen", _box(12.7015, 56.0492, 0.0008, 0.0004)
    ),
)

AREAS: tuple[Zone, ...] = tuple(z for z in ZONES if z.kind == "area")
VENUES: tuple[Zone, ...] = tuple(z for z in ZONES if z.kind == "venue")
ZONE_IDS: tuple[str, ...] = tuple(z.zone_id for z in ZONES)
AREA_IDS: tuple[str, ...] = tuple(z.zone_id for z in AREAS)
VENUE_IDS: tuple[str, ...] = tuple(z.zone_id for z in VENUES)
#: index of each venue's parent area in AREAS
VENUE_PARENT: tuple[int, ...] = tuple(AREA_IDS.index(z.parent_zone_id or "") for z in VENUES)


def points_in_polygon(lon: np.ndarray, lat: np.ndarray, ring: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Even-odd ray casting; vectorised over points."""
    px = np.asarray(lon, dtype=float)
    py = np.asarray(lat, dtype=float)
    inside = np.zeros(px.shape, dtype=bool)
    pts = np.asarray(ring, dtype=float)
    for (x1, y1), (x2, y2) in itertools.pairwise(pts):
        crosses = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (px < xint)
    return inside


def zone_membership(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area index (-1 none) and venue index (-1 none) of each point."""
    area = np.full(np.shape(lon), -1, dtype=np.int8)
    venue = np.full(np.shape(lon), -1, dtype=np.int8)
    for i, z in enumerate(AREAS):
        area[points_in_polygon(lon, lat, z.polygon)] = i
    for i, z in enumerate(VENUES):
        m = points_in_polygon(lon, lat, z.polygon)
        venue[m] = i
        area[m] = VENUE_PARENT[i]  # a venue lies inside its area by construction
    return area, venue


def zones_geojson() -> dict:
    """The zones as a GeoJSON FeatureCollection (WGS84)."""
    features = []
    for z in ZONES:
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "zone_id": z.zone_id,
                    "name": z.name,
                    "kind": z.kind,
                    "parent_zone_id": z.parent_zone_id,
                },
                "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in z.polygon]]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def sample_in_zone(
    rng: np.random.Generator,
    ring: tuple[tuple[float, float], ...],
    n: int,
    exclude: tuple[tuple[tuple[float, float], ...], ...] = (),
) -> np.ndarray:
    """n uniform points (lon, lat) inside a ring, outside the excluded rings (rejection)."""
    pts = np.asarray(ring)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    out: list[np.ndarray] = []
    got = 0
    while got < n:
        cand = lo + rng.random((4 * n + 16, 2)) * (hi - lo)
        ok = points_in_polygon(cand[:, 0], cand[:, 1], ring)
        for ex in exclude:
            ok &= ~points_in_polygon(cand[:, 0], cand[:, 1], ex)
        out.append(cand[ok])
        got += int(ok.sum())
    return np.concatenate(out)[:n]
