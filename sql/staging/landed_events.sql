-- Classify every landed row of the run's days: staged, rejected (with the reason) or duplicate.
-- Reads the temporary tables `landed` (raw rows, as read from the files), `pseudonyms`
-- (IMSI -> device key, built in Python for the distinct IMSIs only) and `reference.cells`.
-- The raw IMSI stops here: nothing below this step sees it.
-- Speed (docs/performance.md): what depends on a value only is computed once per distinct value
-- (IMSI checks and home network per identity, cell validity per cell and local date).
WITH
-- The raw rows are read twice (the cells met, then every row) rather than held: held, they were every
-- raw field of the run's rows, and spilled under the memory limit at 13 M rows (docs/performance.md).
landed_with_partition AS NOT MATERIALIZED (
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

rows_of_run AS NOT MATERIALIZED (
    SELECT * FROM landed_with_partition
    WHERE event_date BETWEEN $first_day AND $last_day
),

-- One row per distinct identity: its pseudonym, whether it is a well-formed IMSI, its home network.
identities AS (
    SELECT
        imsi,
        device_key,
        nullif(trim(imsi), '') IS NULL AS is_blank,
        regexp_full_match(imsi, '[0-9]{14,15}') AS is_well_formed,
        substr(imsi, 1, 3) AS home_mcc,
        substr(imsi, 4, CASE WHEN substr(imsi, 1, 3) IN (SELECT mcc FROM three_digit_mnc_mccs) THEN 3 ELSE 2 END)
            AS home_mnc
    FROM pseudonyms
),

-- One row per cell id and local date met: is the id blank, known, on air that day.
cell_days AS (
    SELECT DISTINCT cell_id, local_date
    FROM rows_of_run
    WHERE cell_id IS NOT NULL AND local_date IS NOT NULL
),

cell_status AS (
    SELECT
        cell_days.cell_id,
        cell_days.local_date,
        nullif(trim(cell_days.cell_id), '') IS NULL AS is_blank,
        count(cells.cell_id) > 0 AS is_known,
        coalesce(bool_or(coalesce(
            cell_days.local_date >= cells.valid_from
            AND (cells.valid_to IS NULL OR cell_days.local_date <= cells.valid_to), false
        )), false) AS is_on_air
    FROM cell_days
    LEFT JOIN reference.cells AS cells ON cells.cell_id = cell_days.cell_id
    GROUP BY cell_days.cell_id, cell_days.local_date
),

normalised AS (
    SELECT
        rows_of_run.event_date,
        rows_of_run.file_number,
        rows_of_run.source_row,
        rows_of_run.event_time_raw,
        rows_of_run.event_time,
        identities.device_key,
        identities.home_mcc,
        identities.home_mnc,
        rows_of_run.cell_id,
        CASE
            WHEN lower(trim(rows_of_run.event_type)) IN ('attach', 'detach', 'call', 'sms', 'data', 'handover', 'location_update')
            THEN lower(trim(rows_of_run.event_type))
            ELSE 'other'
        END AS event_type,
        rows_of_run.event_type AS event_type_raw,
        CASE WHEN regexp_full_match(rows_of_run.tac, '[0-9]{8}') THEN rows_of_run.tac END AS tac,
        rows_of_run.tac AS tac_raw,
        CASE
            WHEN rows_of_run.parse_error IS NOT NULL THEN rows_of_run.parse_error  -- a CSV line that could not be parsed
            WHEN rows_of_run.event_time IS NULL AND nullif(trim(rows_of_run.event_time_raw), '') IS NULL
                THEN 'missing event_time'
            WHEN rows_of_run.event_time IS NULL THEN 'unparseable event_time'
            WHEN rows_of_run.local_date > rows_of_run.delivery_date THEN 'event_time after its delivery day'
            WHEN rows_of_run.local_date < rows_of_run.delivery_date - CAST($late_arrival_days AS INTEGER)
                THEN 'event_time too late for its delivery day'
            WHEN rows_of_run.imsi IS NULL OR identities.is_blank THEN 'missing imsi'
            WHEN NOT identities.is_well_formed THEN 'malformed imsi'
            WHEN rows_of_run.cell_id IS NULL OR cell_status.is_blank THEN 'missing cell_id'
            WHEN NOT cell_status.is_known THEN 'unknown cell_id'
            WHEN NOT cell_status.is_on_air THEN 'cell not on air at event_time'
        END AS reason
    FROM rows_of_run
    LEFT JOIN identities ON identities.imsi = rows_of_run.imsi
    LEFT JOIN cell_status
        ON cell_status.cell_id = rows_of_run.cell_id AND cell_status.local_date = rows_of_run.local_date
)

-- Raw fields are kept for rejected rows only (rejected_events shows them); staged rows need the
-- normalised ones. Exact duplicates are marked next (landed_duplicates.sql): false here.
SELECT
    event_date,
    file_number,  -- landed_files has its path
    source_row,
    CASE WHEN reason IS NOT NULL THEN event_time_raw END AS event_time_raw,
    event_time,
    device_key,
    home_mcc,
    home_mnc,
    cell_id,
    event_type,
    CASE WHEN reason IS NOT NULL THEN event_type_raw END AS event_type_raw,
    tac,
    CASE WHEN reason IS NOT NULL THEN tac_raw END AS tac_raw,
    reason,
    false AS is_duplicate
FROM normalised
