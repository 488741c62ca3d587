-- core.device_homes: each Swedish device's (not machine's) home municipality as known on the day, from the
-- trailing window of earlier nights only (never the future): the municipality of the majority
-- of observed nights, when it has at least $home_min_nights of them; else unknown.
WITH
days AS (
    SELECT unnest(range(CAST($first_day AS TIMESTAMP), CAST($last_day AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY))::DATE AS event_date
),

-- Machines are not residents: they would inflate the operator's measured share. A SIM seen as a machine
-- on any day of the window is one on every day: a fixed device that reports rarely, or once from a far
-- cell, fails the behaviour test on some days (in the seed-42 world at scale 0.1, 416 machine SIMs got
-- a home in Helsingborg that way and raised its measured share by 9 %).
machines_of_window AS (
    SELECT DISTINCT days.event_date, devices.device_key
    FROM days
    JOIN core.devices AS devices
        ON devices.event_date BETWEEN days.event_date - CAST($home_window_nights AS INTEGER) AND days.event_date
    WHERE devices.is_machine
      AND devices.event_date BETWEEN $first_day - CAST($home_window_nights AS INTEGER) AND $last_day
),

swedish_devices_of_day AS (
    SELECT devices.event_date, devices.device_key
    FROM core.devices AS devices
    ANTI JOIN machines_of_window USING (event_date, device_key)
    WHERE devices.event_date BETWEEN $first_day AND $last_day AND devices.home_mcc = '240'
),

nights_in_window AS (
    SELECT days.event_date, nights.device_key, nights.night_municipality
    FROM days
    JOIN core.device_nights AS nights
        ON nights.event_date BETWEEN days.event_date - CAST($home_window_nights AS INTEGER) AND days.event_date - 1
),

nights_per_municipality AS (
    SELECT event_date, device_key, night_municipality, count(*) AS nights
    FROM nights_in_window
    GROUP BY ALL
),

summary AS (
    SELECT
        event_date,
        device_key,
        sum(nights) AS nights_observed,
        max(nights) AS nights_at_home,
        arg_max(night_municipality, struct_pack(n := nights, m := night_municipality)) AS top_municipality
    FROM nights_per_municipality
    GROUP BY event_date, device_key
)

SELECT
    devices.event_date,
    devices.device_key,
    CASE
        WHEN summary.nights_at_home >= $home_min_nights AND summary.nights_at_home * 2 > summary.nights_observed
        THEN summary.top_municipality
    END AS home_municipality,
    coalesce(summary.nights_observed, 0) AS nights_observed,
    coalesce(summary.nights_at_home, 0) AS nights_at_home
FROM swedish_devices_of_day AS devices
LEFT JOIN summary USING (event_date, device_key)
ORDER BY devices.event_date, devices.device_key
