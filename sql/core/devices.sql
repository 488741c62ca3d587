-- core.devices: one row per device and day with what is known of the SIM itself: home network,
-- origin country and handset class (machine SIMs are not visitors).
WITH
device_days AS (
    SELECT
        event_date,
        device_key,
        any_value(home_mcc) AS home_mcc,
        any_value(home_mnc) AS home_mnc,
        max(tac) AS tac,
        count(*) AS n_events,
        count(DISTINCT cell_id) AS n_cells
    FROM staging.events
    WHERE event_date BETWEEN $first_day AND $last_day
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
    coalesce(with_handset.device_class IN ('iot_module', 'router', 'car', 'meter'), false) AS is_machine,
    with_handset.n_events,
    with_handset.n_cells
FROM with_handset
LEFT JOIN reference.mcc_countries AS countries ON countries.mcc = with_handset.home_mcc
ORDER BY event_date, device_key
