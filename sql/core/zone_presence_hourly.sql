-- core.zone_presence_hourly: one row per local hour, zone and device present in the zone at some
-- moment of that hour (any zone visit episode, 20-minute visits and shorter presence alike), with
-- the device's extrapolation weight. The one definition of hourly presence: marts.zone_hourly sums
-- it, marts.suppression_ledger counts its devices. Device-level, so restricted like all of core.
-- An episode that began earlier reaches into the day's first hours. A visit of day D is built from
-- stays of D-1..D+1, and a stay of D+1 may run to the end of D+2, so a visit can last until the end
-- of the second day after it starts: the visits of $first_day - 2 are read too (partition mapping:
-- two days before and the same day), so the rows do not depend on how days are batched into runs.
WITH
hours AS (  -- the local hours of the days (23 or 25 on the days the clocks change)
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
    WHERE visits.event_date BETWEEN $first_day - 2 AND $last_day
)

-- A device present through midnight has visits on two days: the later day's weight, not any one.
-- A device without a weight on any of its visits' days is not counted (as everywhere in the marts).
SELECT
    presence.event_date,
    presence.hour,
    presence.zone_id,
    presence.device_key,
    arg_max(1 / weights.share, presence.visit_date) AS weight
FROM presence
JOIN core.device_weights AS weights
    ON weights.event_date = presence.visit_date AND weights.device_key = presence.device_key
GROUP BY presence.event_date, presence.hour, presence.zone_id, presence.device_key
ORDER BY presence.event_date, presence.hour, presence.zone_id, presence.device_key
