-- staging.events: the validated, de-duplicated, pseudonymised events of the run's days.
SELECT
    event_date,
    event_time,
    device_key,
    home_mcc,
    home_mnc,
    cell_id,
    event_type,
    tac
FROM landed_events
WHERE reason IS NULL AND NOT is_duplicate
ORDER BY event_date, device_key, event_time
