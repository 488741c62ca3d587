-- Exact duplicates among the classified rows of `landed_events` (every normalised field equal,
-- within or across files): every copy but the first delivered one (by source file, then row).
-- ingest.py marks the rows returned here as is_duplicate. One hash aggregation over the staged
-- rows finds the few repeated field combinations; only those are compared field by field (a
-- window partitioned by the five fields sorted every row: 2 s of the 1 M-event day).
WITH
-- The staged rows are read twice rather than held once: held, they were the day's every field
-- (1.5 GB at 13 M rows) and spilled under the memory limit.
staged AS NOT MATERIALIZED (
    SELECT
        file_number,
        source_row,
        event_time,
        device_key,
        cell_id,
        event_type,
        tac,
        hash(event_time, device_key, cell_id, event_type, tac) AS fields_hash
    FROM landed_events
    WHERE reason IS NULL
),

repeated_hashes AS (
    SELECT fields_hash
    FROM staged
    GROUP BY fields_hash
    HAVING count(*) > 1
),

candidates AS (
    SELECT staged.*, landed_files.source_file
    FROM staged
    SEMI JOIN repeated_hashes USING (fields_hash)
    JOIN landed_files USING (file_number)
),

ranked AS (
    SELECT
        file_number,
        source_row,
        row_number() OVER (
            PARTITION BY event_time, device_key, cell_id, event_type, tac ORDER BY source_file, source_row
        ) AS copy_number
    FROM candidates
)

SELECT file_number, source_row
FROM ranked
WHERE copy_number > 1
