-- marts.zone_hourly: distinct people present in each zone at some moment of each local hour
-- (visits and shorter presence alike), extrapolated. Suppressed rows are those of
-- marts.suppression_ledger: under $k distinct devices (primary_k), or a venue hidden so that an
-- area's hour minus its venues does not reveal a suppressed venue (secondary_venue);
-- docs/disclosure.md. Raw presence exact, the estimate rounded to the nearest 10.
-- Who is present when, and with which weight, is core.zone_presence_hourly (shared with the ledger).
WITH
counted AS (
    SELECT event_date, hour, zone_id, count(*) AS present, fsum(weight) AS present_est
    FROM core.zone_presence_hourly
    WHERE event_date BETWEEN $first_day AND $last_day
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
