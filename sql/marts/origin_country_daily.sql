-- marts.origin_country_daily: visits and visitors per zone, day and country_iso2, extrapolated. Suppressed rows
-- (counts empty) are those of marts.suppression_ledger: under $k distinct devices (primary_k), or
-- hidden against differencing (secondary_*); docs/disclosure.md. Raw counts exact, estimates
-- rounded to the nearest 10.
WITH
visitor_days AS (
    SELECT event_date, zone_id, origin_country AS country_iso2, device_key, visits
    FROM core.visitor_days
    WHERE event_date BETWEEN $first_day AND $last_day AND origin_country IS NOT NULL
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
),

ledger AS (
    SELECT event_date, zone_id, group_key AS country_iso2, suppression_rule
    FROM marts.suppression_ledger
    WHERE mart = 'marts.origin_country_daily' AND event_date BETWEEN $first_day AND $last_day
),

publishable AS (
    SELECT
        counted.*,
        -- The ledger decides; a group under k is suppressed even if the ledger were stale.
        coalesce(ledger.suppression_rule, CASE WHEN counted.visitors < $k THEN 'primary_k' END) AS suppression_rule
    FROM counted
    LEFT JOIN ledger USING (event_date, zone_id, country_iso2)
)

SELECT
    event_date,
    zone_id,
    country_iso2,
    CASE WHEN suppression_rule IS NULL THEN visits END AS visits,
    CASE WHEN suppression_rule IS NULL THEN visitors END AS visitors,
    CASE WHEN suppression_rule IS NULL THEN round(visits_est, -1) END AS visits_est,
    CASE WHEN suppression_rule IS NULL THEN round(visitors_est, -1) END AS visitors_est,
    suppression_rule IS NOT NULL AS suppressed,
    suppression_rule
FROM publishable
ORDER BY event_date, zone_id, country_iso2
