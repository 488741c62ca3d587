-- marts.event_kpis: the KPIs of each event in reference.events (DESIGN section 4; docs/publication.md).
-- One row per KPI; the key is (event_id, metric, zone_id, other_zone_id, category), NULL where unused.
--   visits                 per event zone (main zones and the venues inside them) and in total (zone_id
--                          NULL, main zones): Telia's definition, distinct persons per zone and day summed
--                          over the event's days
--   unique_visitors        each person once: over the main zones (zone_id NULL) and per event zone
--   zone_overlap           persons who visited both zone_id and other_zone_id during the event (each pair
--                          once, zone_id < other_zone_id)
--   days_attended          persons by the number of event days they came to the main zones, category
--                          '1', '2', '3-5', '6+' (the categories sum to unique_visitors)
--   days_attended_mean     mean event days per unique visitor
--   visits_per_visitor     mean zone-days (Telia visits) per unique visitor
--   first_time_visitors, returning_visitors   unique visitors without / with a visit to the main zones in
--                          the baseline weeks (up to 28 days before the start that the warehouse holds)
--   uplift                 per main zone and in total: visits on the event days minus the baseline
--                          expectation (the mean of the same weekday in the baseline weeks)
--   countries, municipalities   how many are represented by a publishable group (>= $k devices)
--   international_share, peak_day (value = that day's visits, date in event_date)
--   median_dwell_min       median over the visits (person, main zone, event day) of the person's time in the
--                          zone that day
--
-- Estimates and their 95 % intervals. Every estimate is a sum over persons of a contribution (num) made
-- of extrapolation weights 1 / share (core.device_weights), or a ratio of two such sums (num / den).
-- A person is a subscriber with probability share (binomial sampling), and the share of each share
-- group (municipality, country, national) carries its own relative variance (share_rel_var), common to
-- every person of the group (as marts.zone_daily). For a ratio R the contributions are linearised,
-- num - R * den, and the variance divided by (sum of den)^2. A person's weight is that of their first day
-- at the event; visits and uplift use each day's own weight, like marts.zone_daily (so visits_per_visitor, a
-- mean over persons, can differ a little from visits / unique_visitors when a person's share changes).
-- The uplift's interval adds the baseline's day-to-day variation (pooled over weekdays, less its sampling
-- part): the unknown normal level of each event day and the error of the baseline's weekday means.
-- Zone attribution error (reference.zone_attribution, measured in a validation world): the interval of a
-- count is widened by a factor exp(-+z * sd), with the sd of the zone it counts (the largest of the event's
-- main zones for an event-wide KPI; for an overlap, the two zones' sds in quadrature); its low end is 0
-- when one of them is not separable from its surroundings (every device seen there may have been outside
-- it). The international share is left as it is (a common error cancels in it); the two means over persons
-- (days attended, visits per visitor) take their own sd ($attribution_log_sd_mean: the people attribution
-- adds or misses come on more or fewer days than the others), never below 1; the uplift's variance adds
-- (sd * the zone's event visits)^2, since the error moves the event days' visits.
--
-- Disclosure control (suppression_rule; DESIGN section 5): a KPI with fewer than $k distinct devices
-- behind it is suppressed ('primary_k'). Then, so that no suppressed figure can be recovered by
-- subtraction ('secondary_<relation>'):
--   (days)                 visits, uplift and peak_day are sums of marts.zone_daily cells: the cells that
--                          mart withholds stay in a zone's sums only when they are two or more and hold
--                          k devices together, else they are left out (zones_keeping_withheld_days), so a
--                          KPI less the published days never gives back a withheld cell
--   total_minus_zones      visits (and uplift) in total = the sum over the main zones
--   total_minus_buckets    unique_visitors = the sum of the days_attended categories
--   total_minus_other_group   unique_visitors = first_time_visitors + returning_visitors
--   union_minus_zones      with two main zones A and B: unique_visitors = u(A) + u(B) - overlap(A, B)
--   For each relation whose total is published, the smallest published parts are withheld too until
--   the withheld parts are at least two and hold at least $k distinct devices together.
--   uplift_reveals_visits  an uplift is withheld when the visits of its zone are (visits = uplift +
--                          a baseline read from marts.zone_daily)
-- Sums of weights use fsum (compensated summation): a plain floating sum depends on the order in which
-- parallel threads add, and a re-run must give identical published figures.
WITH
events AS (
    SELECT event_id, any_value(start_date) AS start_date, any_value(end_date) AS end_date,
           count(DISTINCT main_zone_id) AS main_zone_count
    FROM reference.events
    GROUP BY event_id
),

event_zones AS (  -- the main zones and the venues inside them
    SELECT events.event_id, zones.zone_id, bool_or(zones.zone_id = events.main_zone_id) AS is_main_zone
    FROM reference.events AS events
    JOIN reference.zones AS zones ON events.main_zone_id IN (zones.zone_id, zones.parent_zone_id)
    GROUP BY events.event_id, zones.zone_id
),

event_days AS (
    SELECT event_id, CAST(unnest(range(CAST(start_date AS TIMESTAMP), CAST(end_date AS TIMESTAMP) + INTERVAL 1 DAY,
                                       INTERVAL 1 DAY)) AS DATE) AS event_date
    FROM events
),

warehouse_days AS (  -- the daily partitions the warehouse holds
    SELECT DISTINCT event_date FROM core.device_weights
),

baseline_days AS (  -- the baseline weeks: the (up to) 28 days before the event's first day that are held
    SELECT events.event_id, days.event_date, dayofweek(days.event_date) AS weekday
    FROM events
    JOIN warehouse_days AS days ON days.event_date BETWEEN events.start_date - 28 AND events.start_date - 1
),

-- Zone-days that marts.zone_daily withholds (under k devices, or to protect another cell): see
-- zones_keeping_withheld_days for when the sums of zone-days hold them.
withheld_zone_days AS (
    SELECT zone_id, event_date FROM marts.zone_daily WHERE suppressed
),

report_days AS (  -- the days the KPIs read: the event's own days and its baseline weeks
    SELECT event_id, event_date, 'event' AS day_kind, dayofweek(event_date) AS weekday FROM event_days
    UNION ALL
    SELECT event_id, event_date, 'baseline', weekday FROM baseline_days
),

-- One row per event and visitor-day (core.visitor_days: a person in a zone on a day, Telia's unit), with the
-- day's weight: on the event's days (day_kind 'event') for its main zones and the venues inside them, on the
-- baseline days ('baseline') for its main zones only (the uplift's baseline and returning visitors need no
-- more). dwell_s: the person's visit episodes there that day, together.
zone_days AS (
    SELECT
        days.event_id,
        days.day_kind,
        visitor_days.zone_id,
        event_zones.is_main_zone,
        visitor_days.event_date,
        days.weekday,
        visitor_days.device_key,
        weights.share,
        weights.share_rel_var,
        weights.share_basis,
        weights.share_group,
        withheld.zone_id IS NULL AS is_published,
        visitor_days.dwell_s,
        visitor_days.visitor_class,
        visitor_days.origin_country,
        visitor_days.home_municipality
    FROM core.visitor_days AS visitor_days
    JOIN report_days AS days ON days.event_date = visitor_days.event_date
    JOIN event_zones ON event_zones.event_id = days.event_id AND event_zones.zone_id = visitor_days.zone_id
    JOIN core.device_weights AS weights
        ON weights.event_date = visitor_days.event_date AND weights.device_key = visitor_days.device_key
    LEFT JOIN withheld_zone_days AS withheld
        ON withheld.zone_id = visitor_days.zone_id AND withheld.event_date = visitor_days.event_date
    WHERE days.day_kind = 'event' OR event_zones.is_main_zone
),

-- A zone's visits and uplift are sums of its marts.zone_daily cells (event and baseline days). A total that
-- held a single withheld cell, or withheld cells of fewer than k devices together, would give them back (the
-- total less the published days): those zones' sums leave every withheld cell out. Other zones keep them (the
-- difference is only their sum, of k or more devices), so that small venues, withheld on many days,
-- keep a true total. The peak day always sums published cells only. Devices of withheld cells still
-- count for the KPIs about persons (unique visitors, overlap, ...).
zones_keeping_withheld_days AS (
    SELECT event_id, zone_id
    FROM zone_days
    WHERE NOT is_published
    GROUP BY event_id, zone_id
    HAVING count(DISTINCT event_date) >= 2 AND count(DISTINCT device_key) >= $k
),

zone_day_units AS (  -- zone_days, with whether each is in its zone's sums
    SELECT zone_days.*, zone_days.is_published OR keeping.zone_id IS NOT NULL AS in_sums
    FROM zone_days
    LEFT JOIN zones_keeping_withheld_days AS keeping USING (event_id, zone_id)
),

persons AS (  -- each person once per event, with the weight of their first day at the event
    SELECT
        event_id,
        device_key,
        arg_min(share, event_date) AS share,
        arg_min(share_rel_var, event_date) AS share_rel_var,
        arg_min(share_basis, event_date) AS share_basis,
        arg_min(share_group, event_date) AS share_group,
        bool_or(is_main_zone) AS in_main_zones,
        count(DISTINCT event_date) FILTER (WHERE is_main_zone) AS days_attended,
        count(*) FILTER (WHERE is_main_zone) AS zone_days
    FROM zone_days
    WHERE day_kind = 'event'
    GROUP BY event_id, device_key
),

person_flags AS (  -- main-zone visitors: international? seen in the main zones in the baseline weeks?
    SELECT
        persons.event_id,
        persons.device_key,
        bool_or(zone_days.visitor_class = 'international_visitor') AS is_international,
        bool_or(seen_before.device_key IS NOT NULL) AS is_returning
    FROM persons
    JOIN zone_days ON zone_days.event_id = persons.event_id AND zone_days.device_key = persons.device_key
                  AND zone_days.is_main_zone AND zone_days.day_kind = 'event'
    LEFT JOIN (SELECT DISTINCT event_id, device_key FROM zone_days WHERE day_kind = 'baseline') AS seen_before
        ON seen_before.event_id = persons.event_id AND seen_before.device_key = persons.device_key
    WHERE persons.in_main_zones
    GROUP BY persons.event_id, persons.device_key
),

zone_persons AS (  -- who visited each event zone on the event's days
    SELECT DISTINCT event_id, zone_id, device_key FROM zone_days WHERE day_kind = 'event'
),

-- Contributions of each person to each KPI. Absent key parts are '' here and NULL in the output.
-- den is NULL for sums; in_group marks the devices that stand behind the KPI (disclosure control).
person_contributions AS (
    SELECT event_id, 'visits' AS metric, zone_id, '' AS other_zone_id, '' AS category, device_key,
           coalesce(fsum(1 / share) FILTER (WHERE in_sums), 0) AS num, CAST(NULL AS DOUBLE) AS den,
           bool_or(in_sums) AS in_group
    FROM zone_day_units WHERE day_kind = 'event'
    GROUP BY event_id, zone_id, device_key
    UNION ALL
    SELECT event_id, 'visits', '', '', '', device_key, coalesce(fsum(1 / share) FILTER (WHERE in_sums), 0), NULL,
           bool_or(in_sums)
    FROM zone_day_units WHERE day_kind = 'event' AND is_main_zone
    GROUP BY event_id, device_key
    UNION ALL  -- visits of each day, for peak_day (internal)
    SELECT event_id, '_visits_of_day', '', '', strftime(event_date, '%Y-%m-%d'), device_key, fsum(1 / share), NULL, TRUE
    FROM zone_days WHERE day_kind = 'event' AND is_main_zone AND is_published
    GROUP BY event_id, event_date, device_key
    UNION ALL
    SELECT event_id, 'unique_visitors', '', '', '', device_key, 1 / share, NULL, TRUE
    FROM persons WHERE in_main_zones
    UNION ALL
    SELECT persons.event_id, 'unique_visitors', zones.zone_id, '', '', persons.device_key, 1 / persons.share, NULL, TRUE
    FROM persons
    JOIN zone_persons AS zones USING (event_id, device_key)
    UNION ALL
    SELECT persons.event_id, 'zone_overlap', first.zone_id, second.zone_id, '', persons.device_key,
           1 / persons.share, NULL, TRUE
    FROM persons
    JOIN zone_persons AS first USING (event_id, device_key)
    JOIN zone_persons AS second USING (event_id, device_key)
    WHERE first.zone_id < second.zone_id
    UNION ALL
    SELECT event_id, 'days_attended', '', '',
           CASE WHEN days_attended <= 2 THEN CAST(days_attended AS VARCHAR)
                WHEN days_attended <= 5 THEN '3-5' ELSE '6+' END,
           device_key, 1 / share, NULL, TRUE
    FROM persons WHERE in_main_zones
    UNION ALL
    SELECT event_id, 'days_attended_mean', '', '', '', device_key, days_attended / share, 1 / share, TRUE
    FROM persons WHERE in_main_zones
    UNION ALL
    SELECT event_id, 'visits_per_visitor', '', '', '', device_key, zone_days / share, 1 / share, TRUE
    FROM persons WHERE in_main_zones
    UNION ALL  -- only the international visitors stand behind the share (share x unique_visitors = their number)
    SELECT persons.event_id, 'international_share', '', '', '', persons.device_key,
           CASE WHEN flags.is_international THEN 1 / persons.share ELSE 0 END, 1 / persons.share,
           flags.is_international
    FROM persons JOIN person_flags AS flags USING (event_id, device_key)
    UNION ALL  -- the first-time / returning split needs baseline weeks: at least 7 baseline days held
    SELECT persons.event_id,
           CASE WHEN flags.is_returning THEN 'returning_visitors' ELSE 'first_time_visitors' END,
           '', '', '', persons.device_key, 1 / persons.share, NULL, TRUE
    FROM persons JOIN person_flags AS flags USING (event_id, device_key)
    WHERE persons.event_id IN (SELECT event_id FROM baseline_days GROUP BY event_id HAVING count(*) >= 7)
),

-- Uplift = sum over event days of (visits - the mean of the same weekday in the baseline weeks), i.e. a sum
-- of the event days' units (coefficient 1) and the baseline days' units (coefficient -m / n for a
-- weekday with m event days and n baseline days).
event_weekdays AS (
    SELECT event_id, dayofweek(event_date) AS weekday, count(*) AS event_day_count
    FROM event_days
    GROUP BY ALL
),

baseline_weekdays AS (
    SELECT event_id, weekday, count(*) AS baseline_day_count
    FROM baseline_days
    GROUP BY ALL
),

uplift_coefficients AS (
    SELECT event_id, weekday, event_day_count, baseline_day_count,
           -event_day_count / baseline_day_count AS coefficient
    FROM event_weekdays
    JOIN baseline_weekdays USING (event_id, weekday)
),

baseline_series AS (  -- visits per main zone ('' = all main zones) on each baseline day, zeros included
    SELECT
        baseline_days.event_id,
        event_zones.zone_id,
        baseline_days.event_date,
        baseline_days.weekday,
        coalesce(fsum(1 / units.share), 0) AS visits_est,
        coalesce(fsum((1 - units.share) / (units.share * units.share)), 0) AS sampling_var
    FROM baseline_days
    JOIN event_zones ON event_zones.event_id = baseline_days.event_id AND event_zones.is_main_zone
    LEFT JOIN zone_day_units AS units
        ON units.day_kind = 'baseline' AND units.event_id = baseline_days.event_id
       AND units.zone_id = event_zones.zone_id AND units.event_date = baseline_days.event_date AND units.in_sums
    GROUP BY ALL
),

baseline_series_all AS (
    SELECT event_id, zone_id, event_date, weekday, visits_est, sampling_var FROM baseline_series
    UNION ALL
    SELECT event_id, '', event_date, weekday, fsum(visits_est), fsum(sampling_var)
    FROM baseline_series
    GROUP BY event_id, event_date, weekday
),

weekday_means AS (
    SELECT event_id, zone_id, weekday, fsum(visits_est) / count(*) AS weekday_mean
    FROM baseline_series_all
    GROUP BY ALL
),

-- Day-to-day variation of a normal day around its weekday's mean, pooled over the weekdays; the sampling
-- part (already in the units' variance) is taken off. Sampling variance of a day is summed as if persons
-- in two zones were independent: it is slightly understated, so the natural variation is if anything
-- overstated (a wider interval).
day_to_day AS (
    SELECT
        series.event_id,
        series.zone_id,
        greatest(
            fsum((series.visits_est - means.weekday_mean) ^ 2) / (count(*) - count(DISTINCT series.weekday))
                - fsum(series.sampling_var) / count(*),
            0
        ) AS natural_var
    FROM baseline_series_all AS series
    JOIN weekday_means AS means USING (event_id, zone_id, weekday)
    GROUP BY series.event_id, series.zone_id
    HAVING count(*) > count(DISTINCT series.weekday)
),

uplift_events AS (  -- every weekday of the event has baseline days, and the baseline leaves a degree of freedom
    SELECT event_weekdays.event_id,
           fsum(coefficients.event_day_count
                + coefficients.event_day_count * coefficients.event_day_count / coefficients.baseline_day_count)
               AS day_to_day_factor
    FROM event_weekdays
    LEFT JOIN uplift_coefficients AS coefficients USING (event_id, weekday)
    GROUP BY event_weekdays.event_id
    HAVING count(*) = count(coefficients.baseline_day_count)
       AND event_weekdays.event_id IN (SELECT DISTINCT event_id FROM day_to_day)
),

uplift_units AS (  -- the main zones' units in the sums: event days count 1, baseline days their coefficient
    SELECT units.event_id, units.zone_id, units.event_date, units.device_key, units.share, units.share_rel_var,
           units.share_basis, units.share_group,
           CASE WHEN units.day_kind = 'event' THEN 1.0 ELSE coefficients.coefficient END AS coefficient,
           units.day_kind = 'event' AS on_event_day
    FROM zone_day_units AS units
    LEFT JOIN uplift_coefficients AS coefficients
        ON units.day_kind = 'baseline' AND coefficients.event_id = units.event_id
       AND coefficients.weekday = units.weekday
    WHERE units.is_main_zone AND units.in_sums AND units.event_id IN (SELECT event_id FROM uplift_events)
      AND (units.day_kind = 'event' OR coefficients.coefficient IS NOT NULL)
),

uplift_contributions AS (
    SELECT event_id, 'uplift' AS metric, zone_id, '' AS other_zone_id, '' AS category, device_key,
           fsum(coefficient / share) AS num, CAST(NULL AS DOUBLE) AS den, bool_or(on_event_day) AS in_group,
           arg_min(share, event_date) AS share, arg_min(share_rel_var, event_date) AS share_rel_var,
           arg_min(share_basis, event_date) AS share_basis, arg_min(share_group, event_date) AS share_group
    FROM uplift_units
    GROUP BY event_id, zone_id, device_key
    UNION ALL
    SELECT event_id, 'uplift', '', '', '', device_key, fsum(coefficient / share), NULL, bool_or(on_event_day),
           arg_min(share, event_date), arg_min(share_rel_var, event_date),
           arg_min(share_basis, event_date), arg_min(share_group, event_date)
    FROM uplift_units
    GROUP BY event_id, device_key
),

contributions AS (
    SELECT contributions.*, persons.share, persons.share_rel_var, persons.share_basis, persons.share_group
    FROM person_contributions AS contributions
    JOIN persons USING (event_id, device_key)
    UNION ALL
    SELECT event_id, metric, zone_id, other_zone_id, category, device_key, num, den, in_group,
           share, share_rel_var, share_basis, share_group
    FROM uplift_contributions
),

ratios AS (
    SELECT event_id, metric, zone_id, other_zone_id, category, fsum(num) / fsum(den) AS ratio
    FROM contributions
    WHERE den IS NOT NULL
    GROUP BY ALL
),

linearised AS (
    SELECT contributions.*,
           CASE WHEN contributions.den IS NULL THEN contributions.num
                ELSE contributions.num - ratios.ratio * contributions.den END AS linear
    FROM contributions
    LEFT JOIN ratios USING (event_id, metric, zone_id, other_zone_id, category)
),

share_group_variance AS (  -- the share's error is common to every person of a share group
    SELECT event_id, metric, zone_id, other_zone_id, category,
           fsum(group_sum * group_sum * group_rel_var) AS share_var
    FROM (
        SELECT event_id, metric, zone_id, other_zone_id, category, share_basis, share_group,
               fsum(linear) AS group_sum, fsum(share_rel_var) / count(*) AS group_rel_var
        FROM linearised
        GROUP BY ALL
    )
    GROUP BY ALL
),

estimates AS (
    SELECT
        linearised.event_id,
        linearised.metric,
        linearised.zone_id,
        linearised.other_zone_id,
        linearised.category,
        count(DISTINCT linearised.device_key) FILTER (WHERE linearised.in_group) AS devices,
        CASE WHEN count(linearised.den) > 0 THEN fsum(linearised.num) / fsum(linearised.den)
             ELSE fsum(linearised.num) END AS value,
        sqrt(
            (fsum(linearised.linear * linearised.linear * (1 - linearised.share)) + any_value(groups.share_var)
             + coalesce(any_value(day_to_day.natural_var) * any_value(uplift_events.day_to_day_factor), 0))
            / CASE WHEN count(linearised.den) > 0 THEN fsum(linearised.den) ^ 2 ELSE 1 END
        ) AS se
    FROM linearised
    JOIN share_group_variance AS groups USING (event_id, metric, zone_id, other_zone_id, category)
    LEFT JOIN day_to_day
        ON linearised.metric = 'uplift' AND day_to_day.event_id = linearised.event_id
       AND day_to_day.zone_id = linearised.zone_id
    LEFT JOIN uplift_events ON linearised.metric = 'uplift' AND uplift_events.event_id = linearised.event_id
    GROUP BY linearised.event_id, linearised.metric, linearised.zone_id, linearised.other_zone_id, linearised.category
),

peak_day_kpis AS (
    SELECT event_id, 'peak_day' AS metric, '' AS zone_id, '' AS other_zone_id, '' AS category,
           arg_max(devices, struct_pack(v := value, d := category)) AS devices,
           max(value) AS value,
           arg_max(se, struct_pack(v := value, d := category)) AS se,
           CAST(arg_max(category, struct_pack(v := value, d := category)) AS DATE) AS event_date
    FROM estimates
    WHERE metric = '_visits_of_day'
    GROUP BY event_id
),

person_origins AS (
    SELECT DISTINCT event_id, device_key, origin_country, home_municipality
    FROM zone_days
    WHERE day_kind = 'event' AND is_main_zone
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

count_kpis AS (  -- how many groups are publishable; the count itself has no interval
    SELECT event_id, 'countries' AS metric, '' AS zone_id, '' AS other_zone_id, '' AS category,
           sum(devices) AS devices, count(*) FILTER (WHERE devices >= $k) AS value, CAST(NULL AS DOUBLE) AS se
    FROM country_groups GROUP BY event_id
    UNION ALL
    SELECT event_id, 'municipalities', '', '', '', sum(devices), count(*) FILTER (WHERE devices >= $k), NULL
    FROM municipality_groups GROUP BY event_id
),

dwell_kpis AS (  -- over visitor-days (Telia's visits): a person's time in a main zone on a day
    SELECT event_id, 'median_dwell_min' AS metric, '' AS zone_id, '' AS other_zone_id, '' AS category,
           count(DISTINCT device_key) AS devices, median(dwell_s) / 60 AS value, CAST(NULL AS DOUBLE) AS se
    FROM zone_days
    WHERE day_kind = 'event' AND is_main_zone
    GROUP BY event_id
),

all_kpis AS (
    SELECT event_id, metric, zone_id, other_zone_id, category, devices, value, se, CAST(NULL AS DATE) AS event_date
    FROM estimates WHERE metric <> '_visits_of_day'
    UNION ALL SELECT * FROM peak_day_kpis
    UNION ALL SELECT *, NULL FROM count_kpis
    UNION ALL SELECT *, NULL FROM dwell_kpis
),

-- Disclosure control, step 1: under k devices.
first_rules AS (
    SELECT all_kpis.*,
           CASE WHEN all_kpis.devices < $k THEN 'primary_k' END AS own_rule
    FROM all_kpis
),

-- An uplift gives away its zone's visits (visits = uplift + the baseline read from marts.zone_daily):
-- it is withheld with them (here, and again after step 2).
first_pass AS (
    SELECT kpis.* EXCLUDE (own_rule),
           coalesce(kpis.own_rule, CASE WHEN visits.own_rule IS NOT NULL THEN 'secondary_uplift_reveals_visits' END)
               AS first_rule
    FROM first_rules AS kpis
    LEFT JOIN first_rules AS visits
        ON kpis.metric = 'uplift' AND visits.metric = 'visits' AND visits.event_id = kpis.event_id
       AND visits.zone_id = kpis.zone_id AND visits.other_zone_id = '' AND visits.category = ''
),

main_zones AS (
    SELECT event_id, zone_id FROM event_zones WHERE is_main_zone
),

-- Step 2: additive relations (a total and its parts). While a published total has withheld parts, the
-- smallest published parts are withheld too, until at least two parts with k devices together are.
relation_parts AS (
    SELECT event_id, 'total_minus_zones' AS relation, metric AS relation_key, metric AS total_metric,
           metric, zone_id, other_zone_id, category
    FROM first_pass
    JOIN main_zones USING (event_id, zone_id)
    WHERE metric IN ('visits', 'uplift')
    UNION ALL
    SELECT event_id, 'total_minus_buckets', 'days_attended', 'unique_visitors', metric, zone_id, other_zone_id, category
    FROM first_pass WHERE metric = 'days_attended'
    UNION ALL
    SELECT event_id, 'total_minus_other_group', 'first_time', 'unique_visitors', metric, zone_id, other_zone_id,
           category
    FROM first_pass WHERE metric IN ('first_time_visitors', 'returning_visitors')
    UNION ALL  -- two main zones: the union, both zones and their overlap
    SELECT first_pass.event_id, 'union_minus_zones', 'union', 'unique_visitors', metric, zone_id, other_zone_id,
           category
    FROM first_pass
    JOIN events USING (event_id)
    JOIN main_zones USING (event_id, zone_id)
    LEFT JOIN main_zones AS other_zones
        ON other_zones.event_id = first_pass.event_id AND other_zones.zone_id = first_pass.other_zone_id
    WHERE events.main_zone_count = 2
      AND (metric = 'unique_visitors' OR metric = 'zone_overlap' AND other_zones.zone_id IS NOT NULL)
),

relation_totals AS (  -- the relations whose total is published and some part withheld
    SELECT parts.event_id, parts.relation, parts.relation_key
    FROM relation_parts AS parts
    JOIN first_pass AS part USING (event_id, metric, zone_id, other_zone_id, category)
    JOIN first_pass AS total
        ON total.event_id = parts.event_id
       AND total.metric = parts.total_metric
       AND total.zone_id = '' AND total.other_zone_id = '' AND total.category = ''
    GROUP BY parts.event_id, parts.relation, parts.relation_key
    HAVING bool_or(part.first_rule IS NOT NULL) AND bool_and(total.first_rule IS NULL)
),

part_order AS (  -- withheld parts first (0), then the published ones from the smallest
    SELECT
        parts.event_id, parts.relation, parts.relation_key, parts.metric, parts.zone_id, parts.other_zone_id,
        parts.category,
        part.first_rule IS DISTINCT FROM 'primary_k' AS is_secondary,  -- at least k devices, as the attacker knows
        CASE WHEN part.first_rule IS NOT NULL THEN 0
             ELSE row_number() OVER (
                 PARTITION BY parts.event_id, parts.relation_key, part.first_rule IS NOT NULL
                 ORDER BY part.value, parts.metric, parts.zone_id, parts.other_zone_id, parts.category)
        END AS pick
    FROM relation_parts AS parts
    JOIN relation_totals USING (event_id, relation, relation_key)
    JOIN first_pass AS part USING (event_id, metric, zone_id, other_zone_id, category)
),

members AS (  -- the devices behind each part
    SELECT DISTINCT event_id, metric, zone_id, other_zone_id, category, device_key
    FROM contributions
    WHERE in_group
),

steps AS (  -- withholding the parts picked up to `step`: how many parts, how many secondary, how many devices
    SELECT steps.event_id, steps.relation_key, steps.step,
           count(DISTINCT (parts.metric, parts.zone_id, parts.other_zone_id, parts.category)) AS parts,
           count(DISTINCT (parts.metric, parts.zone_id, parts.other_zone_id, parts.category))
               FILTER (WHERE parts.is_secondary) AS secondary_parts,
           count(DISTINCT members.device_key) AS devices
    FROM (SELECT DISTINCT event_id, relation_key, pick AS step FROM part_order) AS steps
    JOIN part_order AS parts
        ON parts.event_id = steps.event_id AND parts.relation_key = steps.relation_key AND parts.pick <= steps.step
    LEFT JOIN members
        ON members.event_id = parts.event_id AND members.metric = parts.metric AND members.zone_id = parts.zone_id
       AND members.other_zone_id = parts.other_zone_id AND members.category = parts.category
    GROUP BY steps.event_id, steps.relation_key, steps.step
),

-- Safe (as in docs/disclosure.md): at least two withheld parts, one of them secondary, and the withheld
-- devices less k for each secondary part (which the attacker may credit with k) still at least k. When
-- no step is safe, every part and the total are withheld.
chosen_steps AS (
    SELECT event_id, relation_key,
           min(step) FILTER (WHERE parts >= 2 AND secondary_parts >= 1 AND devices - $k * secondary_parts >= $k)
               AS step,
           max(step) AS last_step
    FROM steps
    GROUP BY ALL
),

relation_withheld AS (
    SELECT parts.event_id, parts.metric, parts.zone_id, parts.other_zone_id, parts.category,
           min(parts.relation) AS relation
    FROM part_order AS parts
    JOIN chosen_steps USING (event_id, relation_key)
    WHERE parts.pick BETWEEN 1 AND coalesce(chosen_steps.step, chosen_steps.last_step)
    GROUP BY ALL
    UNION ALL  -- no safe step: the total goes too
    SELECT DISTINCT parts.event_id, parts.total_metric, '', '', '', parts.relation
    FROM relation_parts AS parts
    JOIN chosen_steps USING (event_id, relation_key)
    WHERE chosen_steps.step IS NULL
),

second_pass AS (
    SELECT first_pass.*,
           coalesce(first_pass.first_rule, 'secondary_' || relation_withheld.relation) AS second_rule
    FROM first_pass
    LEFT JOIN relation_withheld USING (event_id, metric, zone_id, other_zone_id, category)
),

-- The zones a KPI counts: its zone (and other zone), or the event's main zones.
kpi_zones AS (
    SELECT DISTINCT kpis.event_id, kpis.zone_id, kpis.other_zone_id, attribution.zone_id AS counted_zone_id,
           attribution.attribution_log_sd, attribution.separable
    FROM (SELECT DISTINCT event_id, zone_id, other_zone_id FROM second_pass) AS kpis
    JOIN reference.events AS events ON events.event_id = kpis.event_id
    JOIN reference.zone_attribution AS attribution
        ON CASE WHEN kpis.zone_id = '' THEN attribution.zone_id = events.main_zone_id
                ELSE attribution.zone_id IN (kpis.zone_id, kpis.other_zone_id) END
),

-- An overlap needs a person found in both zones, so the two zones' errors compound (their log sds add in
-- quadrature); a count over several zones at once (the main zones) takes the largest.
kpi_attribution AS (
    SELECT event_id, zone_id, other_zone_id,
           CASE WHEN other_zone_id <> '' THEN sqrt(sum(attribution_log_sd ^ 2))
                ELSE max(attribution_log_sd) END AS attribution_sd,
           bool_and(separable) AS separable
    FROM kpi_zones
    GROUP BY event_id, zone_id, other_zone_id
),

-- Step 3: uplifts of zones whose visits step 2 withheld.
final_kpis AS (
    SELECT kpis.*,
           coalesce(
               kpis.second_rule,
               CASE WHEN kpis.metric = 'uplift' AND visits.second_rule IS NOT NULL
                    THEN 'secondary_uplift_reveals_visits' END
           ) AS suppression_rule,
           CASE WHEN kpis.metric IN ('days_attended_mean', 'visits_per_visitor') THEN 2
                WHEN kpis.metric = 'international_share' THEN 4
                WHEN kpis.se IS NULL THEN 3 ELSE 0 END AS decimals,
           CASE WHEN kpis.metric IN ('days_attended_mean', 'visits_per_visitor') THEN 1
                WHEN kpis.metric = 'international_share' THEN 0
                WHEN kpis.metric = 'uplift' THEN NULL
                ELSE kpis.devices END AS floor_value,
           CASE WHEN kpis.metric IN ('days_attended_mean', 'visits_per_visitor') THEN $attribution_log_sd_mean
                ELSE coalesce(attribution.attribution_sd, 0) END AS attribution_sd,
           coalesce(attribution.separable, true) AS separable,
           visits.value AS uplift_visits
    FROM second_pass AS kpis
    LEFT JOIN kpi_attribution AS attribution  -- ratios: the means carry their own sd, the share none
        ON attribution.event_id = kpis.event_id AND attribution.zone_id = kpis.zone_id
       AND attribution.other_zone_id = kpis.other_zone_id
       AND kpis.metric NOT IN ('days_attended_mean', 'visits_per_visitor', 'international_share')
    LEFT JOIN second_pass AS visits
        ON kpis.metric = 'uplift' AND visits.metric = 'visits' AND visits.event_id = kpis.event_id
       AND visits.zone_id = kpis.zone_id AND visits.other_zone_id = '' AND visits.category = ''
)

SELECT
    event_id,
    metric,
    nullif(zone_id, '') AS zone_id,
    CASE WHEN suppression_rule IS NULL THEN round(value, decimals) END AS value,
    CASE WHEN suppression_rule IS NULL AND se IS NOT NULL
         THEN round(CASE WHEN metric = 'uplift' THEN value - $z * sqrt(se ^ 2 + (attribution_sd * uplift_visits) ^ 2)
                         WHEN NOT separable THEN 0
                         -- a mean's floor of 1 is a bound and holds after widening; the devices seen need not
                         ELSE greatest(greatest(value - $z * se, floor_value) / exp($z * attribution_sd),
                                       least(floor_value, 1)) END,
                    decimals) END AS low,
    CASE WHEN suppression_rule IS NULL AND se IS NOT NULL
         THEN round(CASE WHEN metric = 'uplift' THEN value + $z * sqrt(se ^ 2 + (attribution_sd * uplift_visits) ^ 2)
                         ELSE (value + $z * se) * exp($z * attribution_sd) END,
                    decimals) END AS high,
    suppression_rule IS NOT NULL AS suppressed,
    -- The busiest day's date says nothing about a small group: it stays when only the value is withheld
    -- to protect a zone-day.
    CASE WHEN suppression_rule IS DISTINCT FROM 'primary_k' THEN event_date END AS event_date,
    nullif(other_zone_id, '') AS other_zone_id,
    nullif(category, '') AS category,
    suppression_rule
FROM final_kpis
ORDER BY event_id, metric, zone_id NULLS FIRST, other_zone_id NULLS FIRST, category NULLS FIRST
