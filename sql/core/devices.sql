-- core.devices: one row per device and day with what is known of the SIM itself: home network,
-- origin country, handset class, and whether it is a machine (not a visitor): by handset class
-- where the TAC says so, else by behaviour: all day at one spot (every serving cell within
-- $machine_max_span_m: a fixed device still flips between neighbouring cells), around the clock,
-- with machine-regular timing (coefficient of variation of the gaps under $machine_max_gap_cv).
WITH
-- The local hour of every UTC hour around the days: a join on the hour number instead of a time-zone
-- conversion per event. Hours whose offset is not whole and constant through the hour are left
-- out, and their events are converted one by one (the coalesce below): exact in any time zone.
local_hours AS (
    SELECT utc_hour, hour(make_timestamptz(utc_hour * 3600000000)) AS local_hour
    FROM (
        SELECT unnest(range(
            epoch_us(CAST($first_day AS TIMESTAMPTZ)) // 3600000000 - 1,
            epoch_us(CAST($last_day + 1 AS TIMESTAMPTZ)) // 3600000000 + 1
        )) AS utc_hour
    )
    WHERE minute(make_timestamptz(utc_hour * 3600000000)) = 0
      AND minute(make_timestamptz(utc_hour * 3600000000 + 3599999999)) = 59
      AND hour(make_timestamptz(utc_hour * 3600000000 + 3599999999)) = hour(make_timestamptz(utc_hour * 3600000000))
),

events_of_days AS (
    SELECT
        events.event_date,
        events.device_key,
        events.home_mcc,
        events.home_mnc,
        events.tac,
        events.cell_id,
        cells.latitude,
        cells.longitude,
        epoch_us(events.event_time) AS t_us,
        coalesce(local_hours.local_hour, hour(events.event_time)) AS local_hour
    FROM staging.events AS events
    LEFT JOIN (SELECT cell_id, any_value(latitude) AS latitude, any_value(longitude) AS longitude
               FROM reference.cells GROUP BY cell_id) AS cells USING (cell_id)
    LEFT JOIN local_hours ON local_hours.utc_hour = epoch_us(events.event_time) // 3600000000
    WHERE events.event_date BETWEEN $first_day AND $last_day
),

-- One window pass in time order gives the gaps and the hours: within a local day the wall-clock
-- hour never goes back (the hour repeated in autumn follows itself), so counting the events that
-- change the hour counts the distinct hours. (A count(DISTINCT hour) per device built one more
-- hash table over every event: docs/performance.md.)
timed_events AS (
    SELECT
        *,
        local_hour IS DISTINCT FROM lag(local_hour) OVER by_time AS starts_hour,
        -- gaps within the day: a run over several days gives each day the rows of that day alone
        t_us - lag(t_us) OVER by_time AS gap_us
    FROM events_of_days
    WINDOW by_time AS (PARTITION BY event_date, device_key ORDER BY t_us)
),

device_days AS (
    SELECT
        event_date,
        device_key,
        any_value(home_mcc) AS home_mcc,
        any_value(home_mnc) AS home_mnc,
        max(tac) AS tac,
        count(*) AS n_events,
        count(DISTINCT cell_id) AS n_cells,
        count(*) FILTER (WHERE starts_hour AND local_hour IS NOT NULL) AS active_hours,
        -- the diagonal of the box around the serving cells, in metres
        sqrt(((max(latitude) - min(latitude)) * 110574) ^ 2
             + ((max(longitude) - min(longitude)) * 111320 * cos(radians(avg(latitude)))) ^ 2) AS cells_span_m,
        stddev_pop(gap_us) / nullif(avg(gap_us), 0) AS gap_cv
    FROM timed_events
    GROUP BY event_date, device_key
),

with_handset AS (
    SELECT
        device_days.*,
        (
            SELECT tac_classes.device_class
            FROM reference.tac_classes AS tac_classes
            WHERE starts_with(device_days.tac, tac_classes.tac_prefix)
            ORDER BY length(tac_classes.tac_prefix) DESC  -- the longest matching prefix wins
            LIMIT 1
        ) AS device_class
    FROM device_days
)

SELECT
    with_handset.event_date,
    with_handset.device_key,
    with_handset.home_mcc,
    with_handset.home_mnc,
    countries.country_iso2 AS origin_country,
    with_handset.tac,
    coalesce(with_handset.device_class, 'unknown') AS device_class,
    coalesce(with_handset.device_class IN ('iot_module', 'router', 'car', 'meter'), false) AS is_machine_by_tac,
    coalesce(with_handset.cells_span_m <= $machine_max_span_m, false)
        AND with_handset.active_hours >= $machine_min_active_hours
        AND coalesce(with_handset.gap_cv < $machine_max_gap_cv, false) AS is_machine_by_behaviour,
    is_machine_by_tac OR is_machine_by_behaviour AS is_machine,
    with_handset.n_events,
    with_handset.n_cells,
    with_handset.cells_span_m,
    with_handset.active_hours,
    with_handset.gap_cv
FROM with_handset
LEFT JOIN reference.mcc_countries AS countries ON countries.mcc = with_handset.home_mcc
ORDER BY event_date, device_key
