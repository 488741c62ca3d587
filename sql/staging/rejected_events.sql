-- staging.rejected_events: every landed row that was not staged, with why. No raw IMSI: the
-- `device_key` column holds the pseudonym of whatever the imsi field held.
SELECT
    event_date,
    source_file,
    source_row,
    reason,
    event_time_raw AS event_time,
    device_key,
    cell_id,
    event_type_raw AS event_type,
    tac_raw AS tac
FROM landed_events
WHERE reason IS NOT NULL
ORDER BY event_date, source_file, source_row
