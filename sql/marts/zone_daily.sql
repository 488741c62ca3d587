-- marts.zone_daily: visits and visitors per zone and day, extrapolated to the population with
-- 95 % intervals. Suppressed rows (counts empty) are those of marts.suppression_ledger: under $k
-- distinct devices (primary_k), or hidden so that no suppressed cell can be recovered by
-- differencing (secondary_*); docs/disclosure.md. Raw counts are exact; estimates are rounded to
-- the nearest 10 and their intervals outward to multiples of 10 (so they still contain them).
-- Variance of an estimate v / p for a group of v devices and share p: binomial sampling of who
-- is a subscriber, v (1 - p) / p^2, plus the share's own error, (v / p)^2 * var(p) / p^2. The
-- sampling interval is then widened by the zone attribution error, a factor exp(-+z * sd) with sd the
-- log-scale error of an area's or a venue's counts (reference.zone_attribution; 0 leaves sampling
-- only). A zone that is not separable from its surroundings (counted only through cells that cover
-- mostly the surroundings) has intervals from 0: every device seen there may have been outside it.
WITH
visitor_days AS (  -- a visit in Telia's sense: a person in a zone on a day (core.visitor_days)
    SELECT event_date, zone_id, device_key, visits, dwell_s
    FROM core.visitor_days
    WHERE event_date BETWEEN $first_day AND $last_day
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

-- A visitor's dwell is their time in the zone that day (their visits together): a median over episodes
-- would count one stay cut in two twice.
dwell AS (
    SELECT event_date, zone_id, median(dwell_s) / 60 AS median_dwell_min
    FROM visitor_days
    GROUP BY event_date, zone_id
),

attribution_error AS (
    SELECT zone_id, exp($z * attribution_log_sd) AS factor, separable
    FROM reference.zone_attribution
),

ledger AS (
    SELECT event_date, zone_id, suppression_rule
    FROM marts.suppression_ledger
    WHERE mart = 'marts.zone_daily' AND event_date BETWEEN $first_day AND $last_day
),

publishable AS (
    SELECT
        zone_estimates.*,
        dwell.median_dwell_min,
        coalesce(attribution_error.factor, 1) AS attribution_factor,
        coalesce(attribution_error.separable, true) AS separable,
        -- The ledger decides; a group under k is suppressed even if the ledger were stale.
        coalesce(ledger.suppression_rule, CASE WHEN zone_estimates.visitors < $k THEN 'primary_k' END) AS suppression_rule
    FROM zone_estimates
    JOIN dwell USING (event_date, zone_id)
    LEFT JOIN attribution_error USING (zone_id)
    LEFT JOIN ledger USING (event_date, zone_id)
)

SELECT
    event_date,
    zone_id,
    CASE WHEN suppression_rule IS NULL THEN visits END AS visits,
    CASE WHEN suppression_rule IS NULL THEN visitors END AS visitors,
    CASE WHEN suppression_rule IS NULL THEN round(visits_est, -1) END AS visits_est,
    CASE WHEN suppression_rule IS NULL AND NOT separable THEN 0
         WHEN suppression_rule IS NULL
         THEN floor(greatest(visits_est - $z * visitors_se * visits_est / visitors_est, visits) / attribution_factor / 10) * 10 END AS visits_est_low,
    CASE WHEN suppression_rule IS NULL
         THEN ceil((visits_est + $z * visitors_se * visits_est / visitors_est) * attribution_factor / 10) * 10 END AS visits_est_high,
    CASE WHEN suppression_rule IS NULL THEN round(visitors_est, -1) END AS visitors_est,
    CASE WHEN suppression_rule IS NULL AND NOT separable THEN 0
         WHEN suppression_rule IS NULL
         THEN floor(greatest(visitors_est - $z * visitors_se, visitors) / attribution_factor / 10) * 10 END AS visitors_est_low,
    CASE WHEN suppression_rule IS NULL
         THEN ceil((visitors_est + $z * visitors_se) * attribution_factor / 10) * 10 END AS visitors_est_high,
    CASE WHEN suppression_rule IS NULL THEN round(median_dwell_min, 1) END AS median_dwell_min,
    suppression_rule IS NOT NULL AS suppressed,
    suppression_rule
FROM publishable
ORDER BY event_date, zone_id
