-- event.event_kpis: the headline KPIs of each event in reference.events (DESIGN section 4).
--   visits            per main zone, per venue inside them, and in total (zone_id empty):
--                     Telia's definition, distinct persons per zone per day summed over the days
--   unique_visitors   each person once, across the event's days and main zones
--   countries, municipalities   how many are represented by a publishable group (>= $k devices)
--   international_share, median_dwell_min, peak_day (value = that day's visitors, see event_date)
-- Every KPI needs at least $k distinct devices behind it, else its value is empty (suppressed).
-- Sums of weights use fsum (compensated summation): a plain floating sum depends on the order in
-- which parallel threads add, and a re-run must give identical published figures.
WITH
event_days AS (
    SELECT DISTINCT event_id, start_date, end_date FROM reference.events
),

event_zones AS (
    SELECT DISTINCT events.event_id, zones.zone_id, zones.kind, zones.zone_id = events.main_zone_id AS is_main_zone
    FROM reference.events AS events
    JOIN reference.zones AS zones ON events.main_zone_id IN (zones.zone_id, zones.parent_zone_id)
),

visits_of_event AS (
    SELECT event_zones.event_id, event_zones.is_main_zone, visits.*
    FROM core.zone_visits AS visits
    JOIN event_days ON visits.event_date BETWEEN event_days.start_date AND event_days.end_date
    JOIN event_zones ON event_zones.event_id = event_days.event_id AND event_zones.zone_id = visits.zone_id
    WHERE visits.is_visit
),

weighted_person_days AS (  -- one row per event, zone, day and device
    SELECT
        visits.event_id,
        visits.zone_id,
        visits.is_main_zone,
        visits.event_date,
        visits.device_key,
        any_value(weights.share) AS share,
        any_value(weights.share_rel_var) AS share_rel_var
    FROM visits_of_event AS visits
    JOIN core.device_weights AS weights USING (event_date, device_key)
    GROUP BY ALL
),

zone_visit_kpis AS (
    SELECT
        event_id,
        'visits' AS metric,
        zone_id,
        count(DISTINCT device_key) AS devices,
        fsum(1 / share) AS value,
        sqrt(fsum((1 - share) / (share * share) + share_rel_var / (share * share))) AS se
    FROM weighted_person_days
    GROUP BY event_id, zone_id
),

total_visit_kpis AS (
    SELECT
        event_id,
        'visits' AS metric,
        NULL AS zone_id,
        count(DISTINCT device_key) AS devices,
        fsum(1 / share) AS value,
        sqrt(fsum((1 - share) / (share * share) + share_rel_var / (share * share))) AS se
    FROM weighted_person_days
    WHERE is_main_zone
    GROUP BY event_id
),

persons AS (  -- each person once over the event: weight of their first day
    SELECT
        event_id,
        device_key,
        arg_min(share, event_date) AS share,
        arg_min(share_rel_var, event_date) AS share_rel_var
    FROM weighted_person_days
    WHERE is_main_zone
    GROUP BY event_id, device_key
),

unique_visitor_kpis AS (
    SELECT
        event_id,
        'unique_visitors' AS metric,
        NULL AS zone_id,
        count(*) AS devices,
        fsum(1 / share) AS value,
        sqrt(fsum((1 - share) / (share * share) + share_rel_var / (share * share))) AS se
    FROM persons
    GROUP BY event_id
),

person_origins AS (
    SELECT DISTINCT visits.event_id, visits.device_key, visits.origin_country, visits.home_municipality, visits.visitor_class
    FROM visits_of_event AS visits
    WHERE visits.is_main_zone
),

country_groups AS (
    SELECT event_id, origin_country, count(DISTINCT device_key) AS devices
    FROM person_origins WHERE origin_country IS NOT NULL
    GROUP BY ALL
),

municipality_groups AS (
    SELECT event_id, home_municipality, count(DISTINCT device_key) AS devices
    FROM person_origins WHERE home_municipality IS NOT NULL
    GROUP BY ALL
),

count_kpis AS (
    SELECT event_id, 'countries' AS metric, NULL AS zone_id, sum(devices) AS devices,
           count(*) FILTER (WHERE devices >= $k) AS value, NULL AS se
    FROM country_groups GROUP BY event_id
    UNION ALL
    SELECT event_id, 'municipalities', NULL, sum(devices),
           count(*) FILTER (WHERE devices >= $k), NULL
    FROM municipality_groups GROUP BY event_id
),

international_kpis AS (
    SELECT
        persons.event_id,
        'international_share' AS metric,
        NULL AS zone_id,
        count(*) FILTER (WHERE flags.is_international) AS devices,
        fsum(1 / persons.share) FILTER (WHERE flags.is_international) / fsum(1 / persons.share) AS value,
        NULL AS se
    FROM persons
    JOIN (
        SELECT event_id, device_key, bool_or(visitor_class = 'international_visitor') AS is_international
        FROM person_origins
        GROUP BY ALL
    ) AS flags USING (event_id, device_key)
    GROUP BY persons.event_id
),

dwell_kpis AS (
    SELECT event_id, 'median_dwell_min' AS metric, NULL AS zone_id,
           count(DISTINCT device_key) AS devices, median(dwell_s) / 60 AS value, NULL AS se
    FROM visits_of_event WHERE is_main_zone
    GROUP BY event_id
),

daily_totals AS (
    SELECT event_id, event_date, count(DISTINCT device_key) AS devices, fsum(1 / share) AS value,
           sqrt(fsum((1 - share) / (share * share) + share_rel_var / (share * share))) AS se
    FROM weighted_person_days
    WHERE is_main_zone
    GROUP BY event_id, event_date
),

peak_day_kpis AS (
    SELECT event_id, 'peak_day' AS metric, NULL AS zone_id,
           arg_max(devices, struct_pack(v := value, d := event_date)) AS devices,
           max(value) AS value,
           arg_max(se, struct_pack(v := value, d := event_date)) AS se,
           arg_max(event_date, struct_pack(v := value, d := event_date)) AS event_date
    FROM daily_totals
    GROUP BY event_id
),

all_kpis AS (
    SELECT *, CAST(NULL AS DATE) AS event_date FROM zone_visit_kpis
    UNION ALL SELECT *, NULL FROM total_visit_kpis
    UNION ALL SELECT *, NULL FROM unique_visitor_kpis
    UNION ALL SELECT *, NULL FROM count_kpis
    UNION ALL SELECT *, NULL FROM international_kpis
    UNION ALL SELECT *, NULL FROM dwell_kpis
    UNION ALL SELECT * FROM peak_day_kpis
)

SELECT
    event_id,
    metric,
    zone_id,
    CASE WHEN devices >= $k THEN round(value, CASE WHEN se IS NULL THEN 3 ELSE 0 END) END AS value,
    CASE WHEN devices >= $k AND se IS NOT NULL THEN round(greatest(value - $z * se, 0)) END AS low,
    CASE WHEN devices >= $k AND se IS NOT NULL THEN round(value + $z * se) END AS high,
    devices < $k AS suppressed,
    event_date
FROM all_kpis
ORDER BY event_id, metric, zone_id NULLS FIRST
