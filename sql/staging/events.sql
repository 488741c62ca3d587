-- staging.events: the validated, de-duplicated, pseudonymised events of the run's days.
-- Not sorted: a day (or a batch of small days) is written in one transaction, so its rows sit
-- together anyway, and every reader orders what it needs itself (the sort of 1 M rows by a
-- 32-character key cost 1.7 s).
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
