-- core.stays: one row per stay of a device at a place (here: a cell, after A-B-A smoothing).
-- The stays of day D are found in the events of D - 1 (its last minutes) .. D + 1 (of the devices
-- seen on both sides of D's end) and nothing else, whatever range of days a run covers, so that a
-- re-run of one day gives the same rows as a backfill: a stay across midnight is whole, a stay
-- belongs to the local day it starts, and a stay that goes on past the end of the next day ends there.
WITH
target_days AS (
    SELECT
        target_day,
        epoch_us(CAST(target_day AS TIMESTAMPTZ)) AS day_start_us,  -- local midnight
        epoch_us(CAST(target_day + 1 AS TIMESTAMPTZ)) AS day_end_us,
        -- how far from a midnight an event can still take part in a stay across it
        greatest($stay_max_gap_s, $pingpong_max_s) * 1000000 AS midnight_reach_us
    FROM (
        SELECT CAST(unnest(range(CAST($first_day AS TIMESTAMP), CAST($last_day AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS target_day
    )
),

-- The day after matters to the stays of D only for a device whose first event after D's end follows
-- its last event of D within the gap limit (or the ping-pong limit): further apart, D's last stay ends
-- at its last event by the gap, whatever comes next, and neither the smoothing of D's last events nor
-- the end of that stay looks further. Devices with events within that limit on both sides of D's end
-- include all of those (a few per cent of a day's devices: most are quiet around midnight).
devices_across_midnight AS (
    SELECT target_days.target_day, events.device_key
    FROM staging.events AS events
    JOIN target_days
        ON events.event_date = target_days.target_day
       AND epoch_us(events.event_time) >= target_days.day_end_us - target_days.midnight_reach_us
    WHERE events.event_date BETWEEN $first_day AND $last_day
    INTERSECT
    SELECT target_days.target_day, events.device_key
    FROM staging.events AS events
    JOIN target_days
        ON events.event_date = target_days.target_day + 1
       AND epoch_us(events.event_time) < target_days.day_end_us + target_days.midnight_reach_us
    WHERE events.event_date BETWEEN $first_day + 1 AND $last_day + 1
),

-- Times as integer microseconds: arithmetic on TIMESTAMPTZ goes through time-zone rules.
-- A stay of day D starts with an event of D (its start lies between that event and the one before),
-- and whether it does depends only on events of the day before that lie within the gap limit (or the
-- ping-pong limit) of midnight: an earlier one ends its stay by the gap anyway. So of D - 1 only its
-- last minutes take part, and of D + 1 only the devices across D's end: the window holds little
-- more than one day per target day.
events_of_target_days AS (
    SELECT target_days.target_day, events.device_key, epoch_us(events.event_time) AS t_us, events.cell_id,
           events.event_time
    FROM staging.events AS events
    JOIN target_days ON events.event_date = target_days.target_day
    WHERE events.event_date BETWEEN $first_day AND $last_day
),

events_before_target_days AS (
    SELECT target_days.target_day, events.device_key, epoch_us(events.event_time) AS t_us, events.cell_id,
           events.event_time
    FROM staging.events AS events
    JOIN target_days
        ON events.event_date = target_days.target_day - 1
       AND epoch_us(events.event_time) >= target_days.day_start_us - target_days.midnight_reach_us
    WHERE events.event_date BETWEEN $first_day - 1 AND $last_day - 1
),

events_after_target_days AS (
    SELECT target_days.target_day, events.device_key, epoch_us(events.event_time) AS t_us, events.cell_id,
           events.event_time
    FROM staging.events AS events
    JOIN target_days ON events.event_date = target_days.target_day + 1
    SEMI JOIN devices_across_midnight AS across
        ON across.target_day = target_days.target_day AND across.device_key = events.device_key
    WHERE events.event_date BETWEEN $first_day + 1 AND $last_day + 1
),

events_of_window AS (
    SELECT window_events.target_day, window_events.device_key, window_events.t_us, window_events.cell_id
    FROM (
        SELECT * FROM events_of_target_days
        UNION ALL
        SELECT * FROM events_before_target_days
        UNION ALL
        SELECT * FROM events_after_target_days
    ) AS window_events
    -- semantic cleaning: same-second duplicates in other cells and teleports are left out
    ANTI JOIN core.event_flags AS flags
        ON flags.device_key = window_events.device_key AND flags.event_time = window_events.event_time
       AND flags.cell_id = window_events.cell_id
),

-- One window pass, in one order (time, then cell: ties are resolved the same way everywhere), gives
-- each event its two neighbours on either side. That is enough to know, for every event, its
-- place after smoothing and that of both neighbours, and so whether it starts or ends a stay;
-- the stay's bounds and those of the stays before and after follow from the neighbours' times.
-- (Three window passes, one per step, sorted the day's events three times: docs/performance.md.)
with_neighbours AS (
    SELECT
        target_day,
        device_key,
        t_us,
        cell_id,
        row_number() OVER by_time AS event_number,
        lag(cell_id, 2) OVER by_time AS cell_2_before,
        lag(cell_id) OVER by_time AS cell_before,
        lead(cell_id) OVER by_time AS cell_after,
        lead(cell_id, 2) OVER by_time AS cell_2_after,
        lag(t_us, 2) OVER by_time AS us_2_before,
        lag(t_us) OVER by_time AS us_before,
        lead(t_us) OVER by_time AS us_after,
        lead(t_us, 2) OVER by_time AS us_2_after
    FROM events_of_window
    WINDOW by_time AS (PARTITION BY target_day, device_key ORDER BY t_us, cell_id)
),

-- Ping-pong: a single event at B between two events at A, within a few minutes, is noise.
-- The same rule for the event, the one before it and the one after it.
smoothed AS (
    SELECT
        *,
        CASE
            WHEN cell_before = cell_after AND cell_id <> cell_before AND us_after - us_before <= $pingpong_max_s * 1e6
            THEN cell_before
            ELSE cell_id
        END AS place,
        CASE
            WHEN cell_2_before = cell_id AND cell_before <> cell_2_before AND t_us - us_2_before <= $pingpong_max_s * 1e6
            THEN cell_2_before
            ELSE cell_before
        END AS place_before,
        CASE
            WHEN cell_id = cell_2_after AND cell_after <> cell_id AND us_2_after - t_us <= $pingpong_max_s * 1e6
            THEN cell_id
            ELSE cell_after
        END AS place_after
    FROM with_neighbours
),

-- A stay starts at a change of place or after a gap over the limit; it ends where the next starts.
stay_edges AS (
    SELECT
        target_day,
        device_key,
        event_number,
        t_us,
        place,
        us_before,
        us_after,
        place_before IS DISTINCT FROM place OR t_us - us_before > $stay_max_gap_s * 1e6 AS starts_stay,
        us_after IS NULL OR place_after IS DISTINCT FROM place OR us_after - t_us > $stay_max_gap_s * 1e6 AS ends_stay
    FROM smoothed
),

-- Stays of one event are whole at their edge; a longer stay's start and end edges alternate in
-- time order, so each start takes the end that follows it (a window over those edges only).
observed_stays AS (
    SELECT
        target_day, device_key, place, n_events,
        first_us, last_us, us_before AS previous_last_us, us_after AS next_first_us
    FROM (
        SELECT
            target_day,
            device_key,
            place,
            starts_stay,
            lead(event_number) OVER by_edge - event_number + 1 AS n_events,
            t_us AS first_us,
            lead(t_us) OVER by_edge AS last_us,
            us_before,
            lead(us_after) OVER by_edge AS us_after
        FROM stay_edges
        WHERE starts_stay <> ends_stay
        WINDOW by_edge AS (PARTITION BY target_day, device_key ORDER BY event_number)
    )
    WHERE starts_stay
    UNION ALL
    SELECT target_day, device_key, place, 1 AS n_events, t_us AS first_us, t_us AS last_us, us_before, us_after
    FROM stay_edges
    WHERE starts_stay AND ends_stay
),

-- Between two stays the move happened at an unknown moment: each side gets half of a gap up to
-- the limit. A longer gap leaves presence unknown, not assumed.
stays_bounded AS (
    SELECT
        target_day,
        device_key,
        place,
        n_events,
        CASE
            WHEN first_us - previous_last_us <= $stay_max_gap_s * 1e6 THEN (previous_last_us + first_us) // 2
            ELSE first_us
        END AS start_us,
        CASE
            WHEN next_first_us - last_us <= $stay_max_gap_s * 1e6 THEN (last_us + next_first_us) // 2
            ELSE last_us
        END AS end_us
    FROM observed_stays
),

stays_of_target_day AS (
    SELECT stays_bounded.*, make_timestamptz(start_us) AS stay_start, make_timestamptz(end_us) AS stay_end
    FROM stays_bounded
    JOIN target_days USING (target_day)
    WHERE start_us >= target_days.day_start_us AND start_us < target_days.day_end_us
)

SELECT
    target_day AS event_date,
    device_key,
    stay_start,
    stay_end,
    (end_us - start_us) / 1e6 AS duration_s,
    place,
    n_events
FROM stays_of_target_day
