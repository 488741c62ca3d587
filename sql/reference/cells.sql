-- reference.cells: cell topology with validity dates (valid_to inclusive, empty = on air) and
-- the municipality each cell stands in (nearest municipality for cells off the coast).
WITH
typed AS (
    SELECT
        trim(CAST(cell_id AS VARCHAR)) AS cell_id,
        CAST(latitude AS DOUBLE) AS latitude,
        CAST(longitude AS DOUBLE) AS longitude,
        CAST(nullif(trim(CAST(azimuth_deg AS VARCHAR)), '') AS DOUBLE) AS azimuth_deg,
        CAST(nullif(trim(CAST(beamwidth_deg AS VARCHAR)), '') AS DOUBLE) AS beamwidth_deg,
        CAST(range_m AS DOUBLE) AS range_m,
        CAST(technology AS VARCHAR) AS technology,
        CAST(valid_from AS DATE) AS valid_from,
        CAST(nullif(trim(CAST(valid_to AS VARCHAR)), '') AS DATE) AS valid_to
    FROM landed_cells
),

inside_municipality AS (
    SELECT typed.cell_id, typed.valid_from, any_value(m.municipality_code) AS municipality_code
    FROM typed
    JOIN reference.municipalities AS m ON ST_Contains(m.geometry, ST_Point(typed.longitude, typed.latitude))
    GROUP BY typed.cell_id, typed.valid_from
),

located AS (
    SELECT
        typed.*,
        coalesce(
            inside_municipality.municipality_code,
            (  -- off the coast, or outside a coarse polygon: the nearest municipality
                SELECT m.municipality_code
                FROM reference.municipalities AS m
                ORDER BY ST_Distance(m.geometry, ST_Point(typed.longitude, typed.latitude)), m.municipality_code
                LIMIT 1
            )
        ) AS municipality_code
    FROM typed
    LEFT JOIN inside_municipality USING (cell_id, valid_from)
)

SELECT
    cell_id, latitude, longitude, azimuth_deg, beamwidth_deg, range_m, technology,
    valid_from, valid_to, municipality_code
FROM located
ORDER BY cell_id, valid_from
