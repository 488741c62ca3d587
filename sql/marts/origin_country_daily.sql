-- marts.origin_country_daily: visits and visitors per zone, day and country_iso2, extrapolated;
-- groups under $k distinct devices are suppressed (counts empty, suppressed true).
WITH
visitor_days AS (
    SELECT event_date, zone_id, origin_country AS country_iso2, device_key, count(*) AS visits
    FROM core.zone_visits
    WHERE event_date BETWEEN $first_day AND $last_day AND is_visit AND origin_country IS NOT NULL
    GROUP BY ALL
),

counted AS (
    SELECT
        visitor_days.event_date,
        visitor_days.zone_id,
        visitor_days.country_iso2,
        CAST(sum(visitor_days.visits) AS BIGINT) AS visits,
        count(*) AS visitors,
        fsum(visitor_days.visits / weights.share) AS visits_est,
        fsum(1 / weights.share) AS visitors_est
    FROM visitor_days
    JOIN core.device_weights AS weights USING (event_date, device_key)
    GROUP BY ALL
)

SELECT
    event_date,
    zone_id,
    country_iso2,
    CASE WHEN visitors >= $k THEN visits END AS visits,
    CASE WHEN visitors >= $k THEN visitors END AS visitors,
    CASE WHEN visitors >= $k THEN round(visits_est) END AS visits_est,
    CASE WHEN visitors >= $k THEN round(visitors_est) END AS visitors_est,
    visitors < $k AS suppressed
FROM counted
ORDER BY event_date, zone_id, country_iso2
