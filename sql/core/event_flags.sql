-- core.event_flags: staged events that stays leave out, each with the rule that removed it
-- (semantic cleaning; every decision is a row here, so it is counted).
--   same_second_other_cell  the device has events in several cells within one second: the
--                           event of the smallest cell id stays, the others are flagged
--   impossible_jump         more than $jump_min_km from both neighbouring events, reached
--                           faster than $jump_min_speed_mps from both (a teleport); distances
--                           are between the cells' coverage edges (site distance minus both
--                           ranges), since a phone can be served by a distant rural site
-- Like core.stays, the flags of day D come from the events of D - 1 .. D + 1 (of which the day's
-- neighbours contribute only their edges, see `edge_seconds`).
WITH
cell_positions AS (
    SELECT
        cell_id,
        any_value(latitude) AS latitude,
        any_value(longitude) AS longitude,
        max(range_m) / 1000 AS range_km,
        -- numbered in the order of their ids: the windows sort and compare a number, not text
        row_number() OVER (ORDER BY cell_id) AS cell_number
    FROM reference.cells
    GROUP BY cell_id
),

-- How far in time a neighbour can be and still make a jump: no two cells are further apart than the
-- diagonal of the box around all of them, and a jump covers its distance faster than the speed limit.
-- (cos(latitude) <= 1 and the ranges subtracted only shorten the distances of `jumps`.)
jump_reach AS (
    SELECT
        CASE WHEN $jump_min_speed_mps > 0 THEN
            ceil(sqrt(((max(latitude) - min(latitude)) * 110.574) ^ 2
                      + ((max(longitude) - min(longitude)) * 111.320) ^ 2) * 1000 / $jump_min_speed_mps) + 1
        END AS reach_s
    FROM cell_positions
),

-- An event's neighbours are the device's previous and next events, so of the days around the run
-- only the edges matter: the device's last second of the day before and its first second of the day
-- after (whole seconds, since a crowded second is resolved among its events), and only within the
-- reach of a jump of the run's midnights: a neighbour further away in time cannot make a jump, and
-- an event without a neighbour on one side is never flagged either. Reading just those instead of
-- both whole days keeps the window to the run's own events.
run_bounds AS (
    SELECT
        epoch_us(CAST($first_day AS TIMESTAMPTZ)) - coalesce(reach_s * 1000000, 1e18) AS reach_start_us,
        epoch_us(CAST($last_day + 1 AS TIMESTAMPTZ)) + coalesce(reach_s * 1000000, 1e18) AS reach_end_us
    FROM jump_reach
),

edge_seconds AS (
    SELECT
        events.device_key,
        events.event_date,
        CASE WHEN events.event_date < $first_day THEN max(epoch_us(events.event_time))
             ELSE min(epoch_us(events.event_time)) END // 1000000 AS edge_second
    FROM staging.events AS events, run_bounds
    WHERE (events.event_date = $first_day - 1 AND epoch_us(events.event_time) >= run_bounds.reach_start_us)
       OR (events.event_date = $last_day + 1 AND epoch_us(events.event_time) < run_bounds.reach_end_us)
    GROUP BY events.device_key, events.event_date
),

events_of_window AS (
    -- Times as integer microseconds; the flagged rows get their TIMESTAMPTZ back at the end.
    SELECT events.event_date, events.device_key, epoch_us(events.event_time) AS t_us,
           events.cell_id, cells.cell_number
    FROM staging.events AS events
    JOIN cell_positions AS cells USING (cell_id)
    WHERE events.event_date BETWEEN $first_day AND $last_day
    UNION ALL
    SELECT events.event_date, events.device_key, epoch_us(events.event_time) AS t_us,
           events.cell_id, cells.cell_number
    FROM staging.events AS events
    JOIN cell_positions AS cells USING (cell_id)
    SEMI JOIN edge_seconds AS edges
        ON edges.device_key = events.device_key AND edges.event_date = events.event_date
       AND edges.edge_second = epoch_us(events.event_time) // 1000000
    WHERE events.event_date IN ($first_day - 1, $last_day + 1)
),

-- One window pass over every event, in the order the jump rule uses (time, then cell), gives each
-- event its neighbours, and shows which devices have several cells in one second: the events of
-- a second are consecutive in that order, so such a second has two neighbours in different cells.
-- (Before, a hash aggregation by device and second over every event found the candidate seconds
-- and cost as much as the window: docs/performance.md.)
with_all_neighbours AS (
    SELECT
        *,
        lag(cell_number) OVER by_time AS previous_cell_number,
        lag(t_us) OVER by_time AS previous_us,
        lead(cell_number) OVER by_time AS next_cell_number,
        lead(t_us) OVER by_time AS next_us
    FROM events_of_window
    WINDOW by_time AS (PARTITION BY device_key ORDER BY t_us, cell_number)
),

devices_with_crowded_seconds AS (
    SELECT DISTINCT device_key
    FROM with_all_neighbours
    WHERE t_us // 1000000 = previous_us // 1000000 AND cell_number <> previous_cell_number
),

-- A device without a crowded second loses no event to the first rule, so its neighbours above are
-- final. The others (a few per cent of the events) go through both rules in turn: first the
-- other-cell events of each second go, then the neighbours are found again among those that remain.
events_of_crowded_devices AS (
    SELECT event_date, device_key, t_us, cell_id, cell_number
    FROM with_all_neighbours
    SEMI JOIN devices_with_crowded_seconds USING (device_key)
),

ranked_in_second AS (
    SELECT
        *,
        dense_rank() OVER (PARTITION BY device_key, t_us // 1000000 ORDER BY cell_number) AS cell_rank_in_second
    FROM events_of_crowded_devices
),

-- Events of the same device, time and cell share their rank: they stay or go together.
crowded_with_neighbours AS (
    SELECT
        *,
        lag(cell_number) OVER by_time AS previous_cell_number,
        lag(t_us) OVER by_time AS previous_us,
        lead(cell_number) OVER by_time AS next_cell_number,
        lead(t_us) OVER by_time AS next_us
    FROM ranked_in_second
    WHERE cell_rank_in_second = 1
    WINDOW by_time AS (PARTITION BY device_key ORDER BY t_us, cell_number)
),

with_neighbours AS (
    SELECT event_date, device_key, t_us, cell_id, cell_number, previous_cell_number, previous_us,
           next_cell_number, next_us
    FROM with_all_neighbours
    ANTI JOIN devices_with_crowded_seconds USING (device_key)
    UNION ALL
    SELECT event_date, device_key, t_us, cell_id, cell_number, previous_cell_number, previous_us,
           next_cell_number, next_us
    FROM crowded_with_neighbours
),

-- Positions are looked up after the windows (they sort narrower rows), and only for an event in
-- another cell than both its neighbours: in the same cell as one of them the distance to it is below
-- zero, never a jump.
jumps AS (
    SELECT
        neighbours.*,
        -- equirectangular distance: exact enough to tell 10 km from 100 m
        sqrt(((here.latitude - previous.latitude) * 110.574) ^ 2
             + ((here.longitude - previous.longitude) * 111.320 * cos(radians(here.latitude))) ^ 2)
            - here.range_km - previous.range_km AS km_from_previous,
        sqrt(((here.latitude - next.latitude) * 110.574) ^ 2
             + ((here.longitude - next.longitude) * 111.320 * cos(radians(here.latitude))) ^ 2)
            - here.range_km - next.range_km AS km_to_next
    FROM with_neighbours AS neighbours
    JOIN cell_positions AS here ON here.cell_number = neighbours.cell_number
    JOIN cell_positions AS previous ON previous.cell_number = neighbours.previous_cell_number
    JOIN cell_positions AS next ON next.cell_number = neighbours.next_cell_number
    WHERE neighbours.cell_number <> neighbours.previous_cell_number
      AND neighbours.cell_number <> neighbours.next_cell_number
),

flags AS (
    SELECT event_date, device_key, t_us, cell_id, 'same_second_other_cell' AS rule
    FROM ranked_in_second
    WHERE cell_rank_in_second > 1
    UNION ALL
    SELECT event_date, device_key, t_us, cell_id, 'impossible_jump' AS rule
    FROM jumps
    WHERE km_from_previous > $jump_min_km AND km_to_next > $jump_min_km
      AND km_from_previous * 1000 / greatest((t_us - previous_us) / 1e6, 1) > $jump_min_speed_mps
      AND km_to_next * 1000 / greatest((next_us - t_us) / 1e6, 1) > $jump_min_speed_mps
)

SELECT event_date, device_key, make_timestamptz(t_us) AS event_time, cell_id, rule
FROM flags
WHERE event_date BETWEEN $first_day AND $last_day
ORDER BY event_date, device_key, event_time, cell_id
