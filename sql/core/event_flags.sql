-- core.event_flags: staged events that stays leave out, each with the rule that removed it
-- (semantic cleaning; every decision is a row here, so it is counted).
--   same_second_other_cell  the device has events in several cells within one second: the
--                           event of the smallest cell id stays, the others are flagged
--   impossible_jump         more than $jump_min_km from both neighbouring events, reached
--                           faster than $jump_min_speed_mps from both (a teleport); distances
--                           are between the cells' coverage edges (site distance minus both
--                           ranges), since a phone can be served by a distant rural site
-- Like core.stays, the flags of day D come from the events of D - 1 .. D + 1.
WITH
cell_positions AS (
    SELECT cell_id, any_value(latitude) AS latitude, any_value(longitude) AS longitude,
           max(range_m) / 1000 AS range_km
    FROM reference.cells
    GROUP BY cell_id
),

events_of_window AS (
    SELECT events.event_date, events.device_key, events.event_time, epoch_us(events.event_time) AS t_us,
           events.cell_id, cells.latitude, cells.longitude, cells.range_km
    FROM staging.events AS events
    JOIN cell_positions AS cells USING (cell_id)
    WHERE events.event_date BETWEEN $first_day - 1 AND $last_day + 1
),

-- Several cells in one second of one device are rare: one aggregation on a hash of (device,
-- second) finds the candidates (a collision only adds a candidate), and only their events are
-- ranked; a window over every event sorted all of them (docs/performance.md).
crowded_seconds AS (
    SELECT hash(device_key, t_us // 1000000) AS second_hash
    FROM events_of_window
    GROUP BY second_hash
    HAVING min(cell_id) <> max(cell_id)
),

ranked_in_second AS (
    SELECT
        *,
        dense_rank() OVER (PARTITION BY device_key, t_us // 1000000 ORDER BY cell_id) AS cell_rank_in_second
    FROM events_of_window
    SEMI JOIN crowded_seconds ON crowded_seconds.second_hash = hash(events_of_window.device_key, events_of_window.t_us // 1000000)
),

-- Events of the same device, time and cell share their rank: they stay or go together.
one_cell_per_second AS (
    SELECT *
    FROM events_of_window
    ANTI JOIN (SELECT device_key, t_us, cell_id FROM ranked_in_second WHERE cell_rank_in_second > 1) AS other_cells
        USING (device_key, t_us, cell_id)
),

with_neighbours AS (
    SELECT
        *,
        lag(latitude) OVER by_time AS previous_latitude,
        lag(longitude) OVER by_time AS previous_longitude,
        lag(t_us) OVER by_time AS previous_us,
        lag(range_km) OVER by_time AS previous_range_km,
        lead(range_km) OVER by_time AS next_range_km,
        lead(latitude) OVER by_time AS next_latitude,
        lead(longitude) OVER by_time AS next_longitude,
        lead(t_us) OVER by_time AS next_us
    FROM one_cell_per_second
    WINDOW by_time AS (PARTITION BY device_key ORDER BY t_us, cell_id)
),

jumps AS (
    SELECT
        *,
        -- equirectangular distance: exact enough to tell 10 km from 100 m
        sqrt(((latitude - previous_latitude) * 110.574) ^ 2
             + ((longitude - previous_longitude) * 111.320 * cos(radians(latitude))) ^ 2)
            - range_km - previous_range_km AS km_from_previous,
        sqrt(((latitude - next_latitude) * 110.574) ^ 2
             + ((longitude - next_longitude) * 111.320 * cos(radians(latitude))) ^ 2)
            - range_km - next_range_km AS km_to_next
    FROM with_neighbours
),

flags AS (
    SELECT event_date, device_key, event_time, cell_id, 'same_second_other_cell' AS rule
    FROM ranked_in_second
    WHERE cell_rank_in_second > 1
    UNION ALL
    SELECT event_date, device_key, event_time, cell_id, 'impossible_jump' AS rule
    FROM jumps
    WHERE km_from_previous > $jump_min_km AND km_to_next > $jump_min_km
      AND km_from_previous * 1000 / greatest((t_us - previous_us) / 1e6, 1) > $jump_min_speed_mps
      AND km_to_next * 1000 / greatest((next_us - t_us) / 1e6, 1) > $jump_min_speed_mps
)

SELECT event_date, device_key, event_time, cell_id, rule
FROM flags
WHERE event_date BETWEEN $first_day AND $last_day
ORDER BY event_date, device_key, event_time, cell_id
