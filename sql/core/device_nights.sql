-- core.device_nights: where each device spent the night that begins on the evening of the day
-- (from $night_start_hour to $night_end_hour next morning): the municipality where its stays
-- cover the most night time.
WITH
nights AS (
    SELECT
        day AS event_date,
        CAST(day AS TIMESTAMPTZ) + to_hours(CAST($night_start_hour AS BIGINT)) AS night_start,
        CAST(day + 1 AS TIMESTAMPTZ) + to_hours(CAST($night_end_hour AS BIGINT)) AS night_end
    FROM (SELECT unnest(range(CAST($first_day AS TIMESTAMP), CAST($last_day AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY))::DATE AS day)
),

night_presence AS (
    SELECT
        nights.event_date,
        stays.device_key,
        cells.municipality_code,
        sum(epoch(least(stays.stay_end, nights.night_end) - greatest(stays.stay_start, nights.night_start))) AS seconds
    FROM core.stays AS stays
    JOIN nights
        ON stays.stay_start < nights.night_end AND stays.stay_end > nights.night_start
    JOIN reference.cells AS cells
        ON cells.cell_id = stays.place
       AND CAST(stays.stay_start AS DATE) >= cells.valid_from
       AND (cells.valid_to IS NULL OR CAST(stays.stay_start AS DATE) <= cells.valid_to)
    WHERE stays.event_date BETWEEN $first_day - 1 AND $last_day + 1
    GROUP BY ALL
)

SELECT
    event_date,
    device_key,
    arg_max(municipality_code, struct_pack(s := seconds, m := municipality_code)) AS night_municipality,
    max(seconds) AS seconds_in_municipality,
    sum(seconds) AS seconds_observed
FROM night_presence
WHERE seconds > 0
GROUP BY event_date, device_key
ORDER BY event_date, device_key
