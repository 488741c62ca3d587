-- reference.zones: the zones to measure, from zones.geojson, with the municipality they lie in.
WITH
parsed AS (
    SELECT
        zone_id,
        name,
        kind,
        parent_zone_id,
        ST_GeomFromGeoJSON(geometry_json) AS geometry
    FROM landed_zones
)

SELECT
    parsed.zone_id,
    parsed.name,
    parsed.kind,
    parsed.parent_zone_id,
    parsed.geometry,
    (
        SELECT m.municipality_code
        FROM reference.municipalities AS m
        ORDER BY ST_Distance(m.geometry, ST_Centroid(parsed.geometry)), m.municipality_code
        LIMIT 1
    ) AS municipality_code
FROM parsed
ORDER BY zone_id
