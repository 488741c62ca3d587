-- staging.load_audit: row accounting per partition and source file.
-- landed_rows = staged_rows + rejected_rows + duplicate_rows holds on every row (checked).
-- Files that could not be read at all are listed with status 'unreadable' and no row counts.
-- Reads the temp tables landed_events, landed_files and unreadable_files (crowd_platform/defs/staging/ingest.py).
WITH
counted_by_number AS (
    SELECT
        event_date,
        file_number,
        count(*) AS landed_rows,
        count(*) FILTER (WHERE reason IS NULL AND NOT is_duplicate) AS staged_rows,
        count(*) FILTER (WHERE reason IS NOT NULL) AS rejected_rows,
        count(*) FILTER (WHERE is_duplicate) AS duplicate_rows
    FROM landed_events
    GROUP BY event_date, file_number
),

counted AS (
    SELECT
        counted_by_number.event_date,
        landed_files.source_file,
        counted_by_number.landed_rows,
        counted_by_number.staged_rows,
        counted_by_number.rejected_rows,
        counted_by_number.duplicate_rows
    FROM counted_by_number
    JOIN landed_files USING (file_number)
)

SELECT
    event_date,
    source_file,
    landed_rows,
    staged_rows,
    rejected_rows,
    duplicate_rows,
    'loaded' AS status,
    CAST(NULL AS VARCHAR) AS error
FROM counted
UNION ALL
-- A file read without a single data row (header only) is listed on its delivery day, all zero.
SELECT
    delivery_date AS event_date,
    source_file,
    0 AS landed_rows,
    0 AS staged_rows,
    0 AS rejected_rows,
    0 AS duplicate_rows,
    'loaded' AS status,
    CAST(NULL AS VARCHAR) AS error
FROM landed_files
WHERE rows = 0 AND delivery_date BETWEEN $first_day AND $last_day
UNION ALL
SELECT
    event_date,
    source_file,
    CAST(NULL AS BIGINT) AS landed_rows,
    CAST(NULL AS BIGINT) AS staged_rows,
    CAST(NULL AS BIGINT) AS rejected_rows,
    CAST(NULL AS BIGINT) AS duplicate_rows,
    'unreadable' AS status,
    error
FROM unreadable_files
WHERE event_date BETWEEN $first_day AND $last_day
ORDER BY event_date, source_file
