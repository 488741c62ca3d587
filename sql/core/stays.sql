-- core.stays: one row per stay of a device at a place (here: a cell, after A-B-A smoothing).
-- The stays of day D are found in the events of D - 1 .. D + 1 and nothing else, whatever range
-- of days a run covers, so that a re-run of one day gives the same rows as a backfill: a stay
-- across midnight is whole, a stay belongs to the local day it starts, and a stay that goes on
-- past the end of the next day ends there.
WITH
target_days AS (
    SELECT
        target_day,
        epoch_us(CAST(target_day AS TIMESTAMPTZ)) AS day_start_us,  -- local midnight
        epoch_us(CAST(target_day + 1 AS TIMESTAMPTZ)) AS day_end_us
    FROM (
        SELECT CAST(unnest(range(CAST($first_day AS TIMESTAMP), CAST($last_day AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS target_day
    )
),

events_of_window AS (
    -- Times as integer microseconds: arithmetic on TIMESTAMPTZ goes through time-zone rules.
    SELECT target_days.target_day, events.device_key, epoch_us(events.event_time) AS t_us, events.cell_id
    FROM staging.events AS events
    JOIN target_days ON events.event_date BETWEEN target_days.target_day - 1 AND target_days.target_day + 1
    -- semantic cleaning: same-second duplicates in other cells and teleports are left out
    ANTI JOIN core.event_flags AS flags
        ON flags.device_key = events.device_key AND flags.event_time = events.event_time
       AND flags.cell_id = events.cell_id
    WHERE events.event_date BETWEEN $first_day - 1 AND $last_day + 1
),

with_neighbours AS (
    SELECT
        target_day,
        device_key,
        t_us,
        cell_id,
        lag(cell_id) OVER by_time AS previous_cell,
        lead(cell_id) OVER by_time AS next_cell,
        lag(t_us) OVER by_time AS previous_us,
        lead(t_us) OVER by_time AS next_us
    FROM events_of_window
    WINDOW by_time AS (PARTITION BY target_day, device_key ORDER BY t_us, cell_id)
),

-- Ping-pong: a single event at B between two events at A, within a few minutes, is noise.
smoothed AS (
    SELECT
        target_day,
        device_key,
        t_us,
        CASE
            WHEN previous_cell = next_cell AND cell_id <> previous_cell
                 AND next_us - previous_us <= $pingpong_max_s * 1e6
            THEN previous_cell
            ELSE cell_id
        END AS place
    FROM with_neighbours
),

stay_breaks AS (
    SELECT
        target_day,
        device_key,
        t_us,
        place,
        CASE
            WHEN lag(place) OVER by_time IS DISTINCT FROM place THEN 1
            WHEN t_us - lag(t_us) OVER by_time > $stay_max_gap_s * 1e6 THEN 1
            ELSE 0
        END AS starts_stay
    FROM smoothed
    WINDOW by_time AS (PARTITION BY target_day, device_key ORDER BY t_us)
),

numbered AS (
    SELECT
        *,
        sum(starts_stay) OVER (PARTITION BY target_day, device_key ORDER BY t_us ROWS UNBOUNDED PRECEDING) AS stay_number
    FROM stay_breaks
),

observed_stays AS (
    SELECT
        target_day,
        device_key,
        stay_number,
        any_value(place) AS place,
        min(t_us) AS first_us,
        max(t_us) AS last_us,
        count(*) AS n_events
    FROM numbered
    GROUP BY target_day, device_key, stay_number
),

with_adjacent AS (
    SELECT
        *,
        lag(last_us) OVER by_stay AS previous_last_us,
        lead(first_us) OVER by_stay AS next_first_us
    FROM observed_stays
    WINDOW by_stay AS (PARTITION BY target_day, device_key ORDER BY stay_number)
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
    FROM with_adjacent
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
ORDER BY event_date, device_key, stay_start
