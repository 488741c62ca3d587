-- reference.zone_attribution: how each zone is counted and how far its counts may be off, the one place
-- the marts read it from (docs/methodology.md, "Zone attribution error in the intervals").
--   counting_cells        cells that put a device in the zone (core.zone_visits' rule: at least
--                         $zone_min_weight of the cell's coverage inside it, or a small cell standing in it)
--   max_counting_weight   the largest share of a counting cell's coverage that lies inside the zone
--   separable             some counting cell covers mostly the zone. When none does, the zone is counted
--                         only through small cells that stand in it but cover mostly its surroundings: the
--                         people around the zone are counted as well, and the data cannot rule out that
--                         nobody was inside, so the intervals of its counts start at 0.
--   attribution_log_sd    the log-scale attribution error (methodology attribution_log_sd_*, measured in
--                         a validation world): a venue's (a zone inside another) or an area's
WITH
counting_cells AS (
    SELECT zone_id, cell_id, weight
    FROM reference.cell_zone_weights
    WHERE weight >= $zone_min_weight OR site_in_zone
),

counting_by_zone AS (
    SELECT zone_id, count(DISTINCT cell_id) AS counting_cells, max(weight) AS max_counting_weight
    FROM counting_cells
    GROUP BY zone_id
)

SELECT
    zones.zone_id,
    coalesce(counting_by_zone.counting_cells, 0) AS counting_cells,
    coalesce(counting_by_zone.max_counting_weight, 0.0) AS max_counting_weight,
    coalesce(counting_by_zone.max_counting_weight >= $zone_min_weight, false) AS separable,
    CASE WHEN zones.parent_zone_id IS NULL THEN $attribution_log_sd_area
         ELSE $attribution_log_sd_venue END AS attribution_log_sd
FROM reference.zones AS zones
LEFT JOIN counting_by_zone USING (zone_id)
ORDER BY zones.zone_id
