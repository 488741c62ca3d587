-- staging.rejected_events: every landed row that was not staged, with why. No raw IMSI: the
-- `device_key` column holds the pseudonym of whatever the imsi field held, and any run of 14 or
-- more digits in the other fields (an IMSI in the wrong column) is blanked out.
SELECT
    landed_events.event_date,
    landed_files.source_file,
    landed_events.source_row,
    landed_events.reason,
    -- A Parquet time has no text copy in landed_events (ingest.py): rendered here, in the session's time zone.
    regexp_replace(coalesce(event_time_raw, CAST(event_time AS VARCHAR)), '[0-9]{14,}', '[digits removed]', 'g')
        AS event_time,
    device_key,
    regexp_replace(cell_id, '[0-9]{14,}', '[digits removed]', 'g') AS cell_id,
    regexp_replace(event_type_raw, '[0-9]{14,}', '[digits removed]', 'g') AS event_type,
    regexp_replace(tac_raw, '[0-9]{14,}', '[digits removed]', 'g') AS tac
FROM landed_events
JOIN landed_files USING (file_number)
WHERE landed_events.reason IS NOT NULL
ORDER BY event_date, source_file, source_row
