-- core.device_nights: where each device spent the night that begins on the evening of the day
-- ($night_start_hour local to $night_end_hour next morning): the municipality in whose cells it
-- was seen in the most distinct hours of the night. Events, not stays, so that a device that
-- never moves for days still has its nights.
WITH
nights AS (
    SELECT
        day AS event_date,
        CAST(day AS TIMESTAMPTZ) + to_hours(CAST($night_start_hour AS BIGINT)) AS night_start,
        CAST(day + 1 AS TIMESTAMPTZ) + to_hours(CAST($night_end_hour AS BIGINT)) AS night_end
    FROM (
        SELECT CAST(unnest(range(CAST($first_day AS TIMESTAMP), CAST($last_day AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS day
    )
),

night_hours AS (
    SELECT
        nights.event_date,
        events.device_key,
        cells.municipality_code,
        count(DISTINCT date_trunc('hour', events.event_time)) AS hours
    FROM staging.events AS events
    JOIN nights ON events.event_time >= nights.night_start AND events.event_time < nights.night_end
    JOIN reference.cells AS cells
        ON cells.cell_id = events.cell_id
       AND events.event_date >= cells.valid_from
       AND (cells.valid_to IS NULL OR events.event_date <= cells.valid_to)
    WHERE events.event_date BETWEEN $first_day AND $last_day + 1
    GROUP BY ALL
)

SELECT
    event_date,
    device_key,
    arg_max(municipality_code, struct_pack(h := hours, m := municipality_code)) AS night_municipality,
    max(hours) AS hours_in_municipality,
    sum(hours) AS hours_observed
FROM night_hours
GROUP BY event_date, device_key
ORDER BY event_date, device_key
