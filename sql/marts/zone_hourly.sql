-- marts.zone_hourly: distinct people present in each zone at some moment of each local hour
-- (visits and shorter presence alike), extrapolated. Suppressed rows are those of
-- marts.suppression_ledger: under $k distinct devices (primary_k), or a venue hidden so that an
-- area's hour minus its venues does not reveal a suppressed venue (secondary_venue);
-- docs/disclosure.md. Raw presence exact, the estimate rounded to the nearest 10.
WITH
hours AS (
    SELECT
        CAST(hour_start AS DATE) AS event_date,
        hour(hour_start) AS hour,
        hour_start,
        hour_start + INTERVAL 1 HOUR AS hour_end
    FROM (
        SELECT unnest(range(CAST($first_day AS TIMESTAMPTZ), CAST($last_day + 1 AS TIMESTAMPTZ), INTERVAL 1 HOUR)) AS hour_start
    )
),

presence AS (
    SELECT DISTINCT hours.event_date, hours.hour, visits.zone_id, visits.device_key, visits.event_date AS visit_date
    FROM core.zone_visits AS visits
    JOIN hours ON visits.visit_start < hours.hour_end AND visits.visit_end > hours.hour_start
    WHERE visits.event_date BETWEEN $first_day - 1 AND $last_day
),

weighted AS (
    -- A device present through midnight has visits on two days: the later day's weight, not any one.
    SELECT presence.event_date, presence.hour, presence.zone_id, presence.device_key,
           arg_max(1 / weights.share, presence.visit_date) AS weight
    FROM presence
    JOIN core.device_weights AS weights
        ON weights.event_date = presence.visit_date AND weights.device_key = presence.device_key
    GROUP BY ALL
),

counted AS (
    SELECT event_date, hour, zone_id, count(*) AS present, fsum(weight) AS present_est
    FROM weighted
    GROUP BY ALL
),

ledger AS (
    SELECT event_date, hour, zone_id, suppression_rule
    FROM marts.suppression_ledger
    WHERE mart = 'marts.zone_hourly' AND event_date BETWEEN $first_day AND $last_day
),

publishable AS (
    SELECT
        counted.*,
        -- The ledger decides; a group under k is suppressed even if the ledger were stale.
        coalesce(ledger.suppression_rule, CASE WHEN counted.present < $k THEN 'primary_k' END) AS suppression_rule
    FROM counted
    LEFT JOIN ledger USING (event_date, hour, zone_id)
)

SELECT
    event_date,
    hour,
    zone_id,
    CASE WHEN suppression_rule IS NULL THEN present END AS present,
    CASE WHEN suppression_rule IS NULL THEN round(present_est, -1) END AS present_est,
    suppression_rule IS NOT NULL AS suppressed,
    suppression_rule
FROM publishable
ORDER BY event_date, hour, zone_id
