-- core.devices: one row per device and day with what is known of the SIM itself: home network,
-- origin country, handset class, and whether it is a machine (not a visitor): by handset class
-- where the TAC says so, else by behaviour (one cell all day, around the clock, with
-- machine-regular timing: coefficient of variation of the gaps under $machine_max_gap_cv).
WITH
timed_events AS (
    SELECT
        event_date,
        device_key,
        home_mcc,
        home_mnc,
        tac,
        cell_id,
        hour(event_time) AS local_hour,
        epoch_us(event_time) - lag(epoch_us(event_time)) OVER (PARTITION BY device_key ORDER BY event_time) AS gap_us
    FROM staging.events
    WHERE event_date BETWEEN $first_day AND $last_day
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
        count(DISTINCT local_hour) AS active_hours,
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
    with_handset.n_cells = 1
        AND with_handset.active_hours >= $machine_min_active_hours
        AND coalesce(with_handset.gap_cv < $machine_max_gap_cv, false) AS is_machine_by_behaviour,
    is_machine_by_tac OR is_machine_by_behaviour AS is_machine,
    with_handset.n_events,
    with_handset.n_cells,
    with_handset.active_hours,
    with_handset.gap_cv
FROM with_handset
LEFT JOIN reference.mcc_countries AS countries ON countries.mcc = with_handset.home_mcc
ORDER BY event_date, device_key
