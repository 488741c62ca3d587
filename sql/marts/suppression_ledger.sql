-- marts.suppression_ledger, input: every cell (row) that the marts will publish for the days
-- $first_day .. $last_day, with the number of distinct devices behind it. These counts are never
-- stored: crowd_platform/defs/marts/ledger.py decides from them which cells are suppressed, and
-- why, and writes only that. Each count is defined exactly as in its mart's SQL (same filters,
-- same join to core.device_weights); the marts' `suppression_matches_ledger` checks hold them to it.
-- Hourly presence is defined once, in core.zone_presence_hourly, which marts.zone_hourly reads too.
WITH
visitor_days AS (  -- marts.zone_daily, origin_country_daily, home_municipality_daily
    SELECT visitor_days.event_date, visitor_days.zone_id, visitor_days.device_key, visitor_days.origin_country,
           visitor_days.home_municipality
    FROM core.visitor_days AS visitor_days
    JOIN core.device_weights AS weights USING (event_date, device_key)
    WHERE visitor_days.event_date BETWEEN $first_day AND $last_day
)

SELECT event_date, 'marts.zone_daily' AS mart, zone_id, CAST(NULL AS INTEGER) AS hour, CAST(NULL AS VARCHAR) AS group_key,
       count(DISTINCT device_key) AS visitors
FROM visitor_days
GROUP BY ALL

UNION ALL
SELECT event_date, 'marts.origin_country_daily', zone_id, NULL, origin_country, count(DISTINCT device_key)
FROM visitor_days
WHERE origin_country IS NOT NULL
GROUP BY ALL

UNION ALL
SELECT event_date, 'marts.home_municipality_daily', zone_id, NULL, home_municipality, count(DISTINCT device_key)
FROM visitor_days
WHERE home_municipality IS NOT NULL
GROUP BY ALL

UNION ALL
SELECT event_date, 'marts.zone_hourly', zone_id, hour, NULL, count(DISTINCT device_key)
FROM core.zone_presence_hourly
WHERE event_date BETWEEN $first_day AND $last_day
GROUP BY ALL
