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

-- The UTC hours of the nights that lie within one local hour (every hour in Stockholm; not those of an
-- offset of :30 or :45), with that local hour's start: what `date_trunc('hour', ...)` gives for every
-- event of the UTC hour, computed once per hour instead of a time-zone conversion per event. (In the
-- hour repeated in autumn, date_trunc takes the first of the two: so does this.) Events of other
-- hours are truncated one by one.
whole_hours AS (
    SELECT utc_hour, epoch_us(date_trunc('hour', make_timestamptz(utc_hour * 3600000000))) AS local_hour_start_us
    FROM (
        SELECT unnest(range(
            epoch_us(min(night_start)) // 3600000000 - 1, epoch_us(max(night_end)) // 3600000000 + 1
        )) AS utc_hour
        FROM nights
    )
    WHERE minute(make_timestamptz(utc_hour * 3600000000)) = 0
      AND minute(make_timestamptz(utc_hour * 3600000000 + 3599999999)) = 59
      AND hour(make_timestamptz(utc_hour * 3600000000 + 3599999999)) = hour(make_timestamptz(utc_hour * 3600000000))
),

night_hours AS (
    SELECT
        nights.event_date,
        events.device_key,
        cells.municipality_code,
        count(DISTINCT coalesce(whole_hours.local_hour_start_us, epoch_us(date_trunc('hour', events.event_time))))
            AS hours
    FROM staging.events AS events
    JOIN nights ON events.event_time >= nights.night_start AND events.event_time < nights.night_end
    LEFT JOIN whole_hours ON whole_hours.utc_hour = epoch_us(events.event_time) // 3600000000
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
