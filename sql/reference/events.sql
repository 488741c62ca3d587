-- reference.events: the events to report, one row per event and main zone, from events.toml.
SELECT
    event_id,
    name,
    CAST(start_date AS DATE) AS start_date,
    CAST(end_date AS DATE) AS end_date,
    unnest(main_zones) AS main_zone_id,
    host_municipality
FROM landed_events_toml
ORDER BY event_id, main_zone_id
