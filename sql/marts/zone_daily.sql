-- marts.zone_daily: visits and visitors per zone and day, extrapolated to the population with
-- 95 % intervals; groups under $k distinct devices are suppressed (counts empty).
-- Variance of an estimate v / p for a group of v devices and share p: binomial sampling of who
-- is a subscriber, v (1 - p) / p^2, plus the share's own error, (v / p)^2 * var(p) / p^2.
WITH
visitor_days AS (
    SELECT event_date, zone_id, device_key, count(*) AS visits
    FROM core.zone_visits
    WHERE event_date BETWEEN $first_day AND $last_day AND is_visit
    GROUP BY ALL
),

share_groups AS (
    SELECT
        visitor_days.event_date,
        visitor_days.zone_id,
        weights.share_basis,
        weights.share_group,
        count(*) AS visitors,
        CAST(sum(visitor_days.visits) AS BIGINT) AS visits,
        any_value(weights.share) AS share,
        any_value(weights.share_rel_var) AS share_rel_var
    FROM visitor_days
    JOIN core.device_weights AS weights USING (event_date, device_key)
    GROUP BY ALL
),

group_estimates AS (
    SELECT
        *,
        visitors / share AS visitors_est,
        visits / share AS visits_est,
        visitors * (1 - share) / (share * share) + (visitors / share) ^ 2 * share_rel_var AS visitors_var
    FROM share_groups
),

zone_estimates AS (
    SELECT
        event_date,
        zone_id,
        CAST(sum(visitors) AS BIGINT) AS visitors,
        CAST(sum(visits) AS BIGINT) AS visits,
        fsum(visitors_est) AS visitors_est,
        fsum(visits_est) AS visits_est,
        sqrt(fsum(visitors_var)) AS visitors_se
    FROM group_estimates
    GROUP BY ALL
),

dwell AS (
    SELECT event_date, zone_id, median(dwell_s) / 60 AS median_dwell_min
    FROM core.zone_visits
    WHERE event_date BETWEEN $first_day AND $last_day AND is_visit
    GROUP BY ALL
),

publishable AS (
    SELECT zone_estimates.*, dwell.median_dwell_min, zone_estimates.visitors < $k AS suppressed
    FROM zone_estimates
    JOIN dwell USING (event_date, zone_id)
)

SELECT
    event_date,
    zone_id,
    CASE WHEN NOT suppressed THEN visits END AS visits,
    CASE WHEN NOT suppressed THEN visitors END AS visitors,
    CASE WHEN NOT suppressed THEN round(visits_est) END AS visits_est,
    CASE WHEN NOT suppressed THEN round(greatest(visits_est - $z * visitors_se * visits_est / visitors_est, visits)) END AS visits_est_low,
    CASE WHEN NOT suppressed THEN round(visits_est + $z * visitors_se * visits_est / visitors_est) END AS visits_est_high,
    CASE WHEN NOT suppressed THEN round(visitors_est) END AS visitors_est,
    CASE WHEN NOT suppressed THEN round(greatest(visitors_est - $z * visitors_se, visitors)) END AS visitors_est_low,
    CASE WHEN NOT suppressed THEN round(visitors_est + $z * visitors_se) END AS visitors_est_high,
    CASE WHEN NOT suppressed THEN round(median_dwell_min, 1) END AS median_dwell_min,
    suppressed
FROM publishable
ORDER BY event_date, zone_id
