-- Classify every landed row of the run's days: staged, rejected (with the reason) or duplicate.
-- Reads the temporary tables `landed` (raw rows, as read from the files), `pseudonyms`
-- (IMSI -> device key, built in Python for the distinct IMSIs only) and `reference.cells`.
-- The raw IMSI stops here: nothing below this step sees it.
WITH
landed_with_partition AS (
    SELECT
        landed.*,
        CASE
            WHEN landed.local_date
                 BETWEEN landed.delivery_date - CAST($late_arrival_days AS INTEGER) AND landed.delivery_date
            THEN landed.local_date
            ELSE landed.delivery_date  -- rows without a usable time are accounted to their folder's day
        END AS event_date
    FROM landed
),

rows_of_run AS (
    SELECT * FROM landed_with_partition
    WHERE event_date BETWEEN $first_day AND $last_day
),

checked AS (
    SELECT
        rows_of_run.*,
        CASE
            WHEN parse_error IS NOT NULL THEN parse_error  -- a CSV line that could not be parsed
            WHEN event_time IS NULL AND nullif(trim(event_time_raw), '') IS NULL THEN 'missing event_time'
            WHEN event_time IS NULL THEN 'unparseable event_time'
            WHEN local_date > delivery_date THEN 'event_time after its delivery day'
            WHEN local_date < delivery_date - CAST($late_arrival_days AS INTEGER) THEN 'event_time too late for its delivery day'
            WHEN nullif(trim(imsi), '') IS NULL THEN 'missing imsi'
            WHEN NOT regexp_full_match(imsi, '[0-9]{14,15}') THEN 'malformed imsi'
            WHEN nullif(trim(rows_of_run.cell_id), '') IS NULL THEN 'missing cell_id'
            WHEN NOT EXISTS (SELECT 1 FROM reference.cells AS known WHERE known.cell_id = rows_of_run.cell_id)
                THEN 'unknown cell_id'
            WHEN NOT EXISTS (
                SELECT 1 FROM reference.cells AS on_air
                WHERE on_air.cell_id = rows_of_run.cell_id
                  AND local_date >= on_air.valid_from
                  AND (on_air.valid_to IS NULL OR local_date <= on_air.valid_to)
            ) THEN 'cell not on air at event_time'
        END AS reason
    FROM rows_of_run
),

normalised AS (
    SELECT
        checked.event_date,
        checked.source_file,
        checked.source_row,
        checked.event_time_raw,
        checked.event_time,
        pseudonyms.device_key,
        substr(checked.imsi, 1, 3) AS home_mcc,
        substr(checked.imsi, 4, CASE WHEN substr(checked.imsi, 1, 3) IN (SELECT mcc FROM three_digit_mnc_mccs) THEN 3 ELSE 2 END)
            AS home_mnc,
        checked.cell_id,
        CASE
            WHEN lower(trim(checked.event_type)) IN ('attach', 'detach', 'call', 'sms', 'data', 'handover', 'location_update')
            THEN lower(trim(checked.event_type))
            ELSE 'other'
        END AS event_type,
        checked.event_type AS event_type_raw,
        CASE WHEN regexp_full_match(checked.tac, '[0-9]{8}') THEN checked.tac END AS tac,
        checked.tac AS tac_raw,
        checked.reason
    FROM checked
    LEFT JOIN pseudonyms ON pseudonyms.imsi = checked.imsi
)

SELECT
    normalised.*,
    -- Exact duplicates (every field equal, within or across files): the first delivered copy stays.
    reason IS NULL AND row_number() OVER (
        PARTITION BY reason IS NULL, event_time, device_key, cell_id, event_type, tac
        ORDER BY source_file, source_row
    ) > 1 AS is_duplicate
FROM normalised
