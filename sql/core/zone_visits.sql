-- core.zone_visits: one row per visit episode of a device to a zone: its stays at cells that count in
-- the zone (at least $zone_min_weight of the cell's coverage inside it, or a small cell standing in it;
-- see reference.cell_zone_weights), merged while they touch or while the device, between them, was seen
-- only at cells whose coverage reaches into the zone, for no longer than $visit_bridge_max_s (a phone
-- inside a zone is often served by a cell that mostly covers its surroundings: that is not a departure).
-- Episodes shorter than $passerby_min_s are dropped; is_visit marks those of at least $visit_min_s. An
-- episode belongs to the local day it starts. Machine SIMs are left out.
-- Like core.stays, the episodes of day D are built from the stays of D - 1 .. D + 1 only, so a
-- re-run of one day gives the same rows as a backfill.
WITH
target_days AS (
    SELECT CAST(unnest(range(CAST($first_day AS TIMESTAMP), CAST($last_day AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS target_day
),

stays_of_window AS (
    SELECT target_days.target_day, stays.device_key, stays.stay_start, stays.stay_end, stays.place
    FROM core.stays AS stays
    JOIN target_days ON stays.event_date BETWEEN target_days.target_day - 1 AND target_days.target_day + 1
    WHERE stays.event_date BETWEEN $first_day - 1 AND $last_day + 1
),

-- Every stay at a cell whose coverage reaches into a zone (reference.cell_zone_weights holds those only).
stays_reaching_zones AS (
    SELECT
        stays.target_day,
        stays.device_key,
        weights.zone_id,
        stays.stay_start,
        stays.stay_end,
        weights.weight >= $zone_min_weight OR weights.site_in_zone AS counts_in_zone
    FROM stays_of_window AS stays
    JOIN reference.cell_zone_weights AS weights
        ON weights.cell_id = stays.place
       AND CAST(stays.stay_start AS DATE) >= weights.valid_from
       AND (weights.valid_to IS NULL OR CAST(stays.stay_start AS DATE) <= weights.valid_to)
),

-- A device's stays follow each other without a gap (each takes half of the move's gap) unless the gap
-- was over the stay limit; so a stay that does not touch the earlier ones of this list means that the
-- device was at a cell outside the zone's reach, or silent, in between.
reach_breaks AS (
    SELECT
        *,
        coalesce(
            stay_start > max(stay_end) OVER (
                PARTITION BY target_day, device_key, zone_id ORDER BY stay_start, stay_end
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ),
            true
        ) AS leaves_reach_before
    FROM stays_reaching_zones
),

within_reach AS (  -- a number per unbroken stretch of stays within the zone's reach
    SELECT
        *,
        sum(CAST(leaves_reach_before AS INTEGER)) OVER (
            PARTITION BY target_day, device_key, zone_id ORDER BY stay_start, stay_end ROWS UNBOUNDED PRECEDING
        ) AS reach_number
    FROM reach_breaks
),

counting_stays AS (
    SELECT
        target_day,
        device_key,
        zone_id,
        stay_start,
        stay_end,
        reach_number,
        lag(reach_number) OVER by_start AS previous_reach_number,
        max(stay_end) OVER (by_start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_counting_end
    FROM within_reach
    WHERE counts_in_zone
    WINDOW by_start AS (PARTITION BY target_day, device_key, zone_id ORDER BY stay_start, stay_end)
),

episode_breaks AS (
    SELECT
        *,
        CASE
            WHEN previous_counting_end IS NULL THEN 1
            WHEN reach_number <> previous_reach_number THEN 1  -- left the zone's reach in between
            WHEN epoch(stay_start - previous_counting_end) > $visit_bridge_max_s THEN 1  -- too long outside
            ELSE 0
        END AS starts_episode
    FROM counting_stays
),

episodes AS (
    SELECT
        target_day,
        device_key,
        zone_id,
        min(stay_start) AS visit_start,
        max(stay_end) AS visit_end
    FROM (
        SELECT
            *,
            sum(starts_episode) OVER (
                PARTITION BY target_day, device_key, zone_id ORDER BY stay_start, stay_end ROWS UNBOUNDED PRECEDING
            ) AS episode_number
        FROM episode_breaks
    )
    GROUP BY target_day, device_key, zone_id, episode_number
),

episodes_of_run AS (
    SELECT CAST(visit_start AS DATE) AS event_date, device_key, zone_id, visit_start, visit_end
    FROM episodes
    WHERE CAST(visit_start AS DATE) = target_day
      AND epoch(visit_end - visit_start) >= $passerby_min_s
),

-- A SIM's profile does not change from day to day; the neighbouring days cover an episode
-- that starts just before the device's first event of its day.
device_profile AS (
    SELECT
        device_key,
        any_value(origin_country) AS origin_country,
        any_value(home_mcc) AS home_mcc,
        bool_or(is_machine) AS is_machine
    FROM core.devices
    WHERE event_date BETWEEN $first_day - 1 AND $last_day + 1
    GROUP BY device_key
),

-- The host municipality's residents are "residents": the event's host where the zone belongs to
-- an event (as a main zone or a venue inside one), else the municipality the zone lies in.
zone_host AS (
    SELECT
        zones.zone_id,
        coalesce(
            any_value(events.host_municipality) FILTER (WHERE events.host_municipality IS NOT NULL),
            any_value(zones.municipality_code)
        ) AS host_municipality
    FROM reference.zones AS zones
    LEFT JOIN reference.events AS events
        ON events.main_zone_id IN (zones.zone_id, zones.parent_zone_id)
    GROUP BY zones.zone_id
)

SELECT
    episodes_of_run.event_date,
    episodes_of_run.device_key,
    episodes_of_run.zone_id,
    episodes_of_run.visit_start,
    episodes_of_run.visit_end,
    epoch(episodes_of_run.visit_end - episodes_of_run.visit_start) AS dwell_s,
    epoch(episodes_of_run.visit_end - episodes_of_run.visit_start) >= $visit_min_s AS is_visit,
    CASE
        WHEN device_profile.home_mcc IS DISTINCT FROM '240' AND device_profile.origin_country IS NOT NULL
            THEN 'international_visitor'
        WHEN homes.home_municipality IS NULL THEN 'unknown'
        WHEN homes.home_municipality = zone_host.host_municipality THEN 'resident'
        ELSE 'domestic_visitor'
    END AS visitor_class,
    device_profile.origin_country,
    CASE WHEN device_profile.home_mcc = '240' THEN homes.home_municipality END AS home_municipality
FROM episodes_of_run
JOIN device_profile USING (device_key)
LEFT JOIN core.device_homes AS homes USING (event_date, device_key)
LEFT JOIN zone_host USING (zone_id)
WHERE NOT device_profile.is_machine
ORDER BY episodes_of_run.event_date, episodes_of_run.device_key, episodes_of_run.zone_id, episodes_of_run.visit_start
