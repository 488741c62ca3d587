-- reference.cell_zone_weights: which share of each cell's coverage lies in each zone.
-- Coverage is a sector (wedge of the beam width around the azimuth, out to the range) or, for
-- omni cells, a disc; built in local metres around the cell and expressed in WGS84. The weight
-- is an area ratio, which a local lon/lat projection preserves, so no reprojection is needed.
-- `site_in_zone` marks a small cell (range up to $small_cell_max_range_m) standing inside the zone:
-- operators plan such cells for the venue they stand in, and an area ratio would dilute a venue
-- of a few thousand square metres in the cell's nominal disc.
WITH
shapes AS (
    SELECT
        cell_id,
        valid_from,
        valid_to,
        longitude,
        latitude,
        range_m,
        azimuth_deg IS NULL OR coalesce(beamwidth_deg, 360) >= 360 AS is_omni,
        CASE WHEN is_omni THEN 0.0 ELSE azimuth_deg - beamwidth_deg / 2 END AS arc_start_deg,
        CASE WHEN is_omni THEN 360.0 ELSE beamwidth_deg END AS arc_width_deg
    FROM reference.cells
),

arcs AS (
    SELECT
        shapes.*,
        list_transform(
            range(0, 25),
            step -> ST_Point(
                longitude + range_m * sin(radians(arc_start_deg + step * arc_width_deg / 24))
                    / (111320 * cos(radians(latitude))),
                latitude + range_m * cos(radians(arc_start_deg + step * arc_width_deg / 24)) / 110574
            )
        ) AS arc_points
    FROM shapes
),

coverage AS (
    SELECT
        cell_id,
        valid_from,
        valid_to,
        longitude,
        latitude,
        range_m,
        ST_MakePolygon(ST_MakeLine(
            CASE WHEN is_omni THEN list_concat(arc_points, [arc_points[1]])
                 ELSE list_concat([ST_Point(longitude, latitude)], arc_points, [ST_Point(longitude, latitude)])
            END
        )) AS footprint
    FROM arcs
),

zone_overlaps AS (
    SELECT
        coverage.cell_id,
        coverage.valid_from,
        coverage.valid_to,
        zones.zone_id,
        ST_Area(ST_Intersection(coverage.footprint, zones.geometry)) / ST_Area(coverage.footprint) AS weight,
        coverage.range_m <= $small_cell_max_range_m
            AND ST_Contains(zones.geometry, ST_Point(coverage.longitude, coverage.latitude)) AS site_in_zone
    FROM coverage
    JOIN reference.zones AS zones ON ST_Intersects(coverage.footprint, zones.geometry)
)

SELECT cell_id, valid_from, valid_to, zone_id, weight, site_in_zone
FROM zone_overlaps
WHERE weight > 0
ORDER BY cell_id, valid_from, zone_id
