-- core.stays: one row per stay of a device at a place (here: a cell, after A-B-A smoothing).
-- The stays of day D are found in the events of D - 1 .. D + 1 and nothing else, whatever range
-- of days a run covers, so that a re-run of one day gives the same rows as a backfill: a stay
-- across midnight is whole, a stay belongs to the local day it starts, and a stay that goes on
-- past the end of the next day ends there.
WITH
target_days AS (
    SELECT CAST(unnest(range(CAST($first_day AS TIMESTAMP), CAST($last_day AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS target_day
),

events_of_window AS (
    SELECT target_days.target_day, events.device_key, events.event_time, events.cell_id
    FROM staging.events AS events
    JOIN target_days ON events.event_date BETWEEN target_days.target_day - 1 AND target_days.target_day + 1
    WHERE events.event_date BETWEEN $first_day - 1 AND $last_day + 1
),

with_neighbours AS (
    SELECT
        target_day,
        device_key,
        event_time,
        cell_id,
        lag(cell_id) OVER by_time AS previous_cell,
        lead(cell_id) OVER by_time AS next_cell,
        lag(event_time) OVER by_time AS previous_time,
        lead(event_time) OVER by_time AS next_time
    FROM events_of_window
    WINDOW by_time AS (PARTITION BY target_day, device_key ORDER BY event_time, cell_id)
),

-- Ping-pong: a single event at B between two events at A, within a few minutes, is noise.
smoothed AS (
    SELECT
        target_day,
        device_key,
        event_time,
        CASE
            WHEN previous_cell = next_cell AND cell_id <> previous_cell
                 AND epoch(next_time - previous_time) <= $pingpong_max_s
            THEN previous_cell
            ELSE cell_id
        END AS place
    FROM with_neighbours
),

stay_breaks AS (
    SELECT
        target_day,
        device_key,
        event_time,
        place,
        CASE
            WHEN lag(place) OVER by_time IS DISTINCT FROM place THEN 1
            WHEN epoch(event_time - lag(event_time) OVER by_time) > $stay_max_gap_s THEN 1
            ELSE 0
        END AS starts_stay
    FROM smoothed
    WINDOW by_time AS (PARTITION BY target_day, device_key ORDER BY event_time)
),

numbered AS (
    SELECT
        *,
        sum(starts_stay) OVER (PARTITION BY target_day, device_key ORDER BY event_time ROWS UNBOUNDED PRECEDING) AS stay_number
    FROM stay_breaks
),

observed_stays AS (
    SELECT
        target_day,
        device_key,
        stay_number,
        any_value(place) AS place,
        min(event_time) AS first_event,
        max(event_time) AS last_event,
        count(*) AS n_events
    FROM numbered
    GROUP BY target_day, device_key, stay_number
),

with_adjacent AS (
    SELECT
        *,
        lag(last_event) OVER by_stay AS previous_last_event,
        lead(first_event) OVER by_stay AS next_first_event
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
            WHEN epoch(first_event - previous_last_event) <= $stay_max_gap_s
            THEN previous_last_event + to_microseconds(CAST((epoch_us(first_event) - epoch_us(previous_last_event)) / 2 AS BIGINT))
            ELSE first_event
        END AS stay_start,
        CASE
            WHEN epoch(next_first_event - last_event) <= $stay_max_gap_s
            THEN last_event + to_microseconds(CAST((epoch_us(next_first_event) - epoch_us(last_event)) / 2 AS BIGINT))
            ELSE last_event
        END AS stay_end
    FROM with_adjacent
)

SELECT
    CAST(stay_start AS DATE) AS event_date,
    device_key,
    stay_start,
    stay_end,
    epoch(stay_end - stay_start) AS duration_s,
    place,
    n_events
FROM stays_bounded
WHERE CAST(stay_start AS DATE) = target_day
ORDER BY event_date, device_key, stay_start
