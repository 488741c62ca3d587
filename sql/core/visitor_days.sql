-- core.visitor_days: one row per device, zone and day with a visit (at least the visit threshold), the
-- unit the marts count: a visit in Telia's sense is a person in a zone on a day. `visits` counts the
-- person's visit episodes there that day (a presence split by a gap over the limit is two) and `dwell_s`
-- is their time together, so that a stay cut in two is one visitor-day with the whole time. Class,
-- origin country and home municipality are a device's for the day (the class also depends on the zone:
-- resident of its host municipality); the check `one_row_per_visitor_day` holds them to that.
SELECT
    event_date,
    zone_id,
    device_key,
    visitor_class,
    origin_country,
    home_municipality,
    count(*) AS visits,
    sum(dwell_s) AS dwell_s
FROM core.zone_visits
WHERE event_date BETWEEN $first_day AND $last_day AND is_visit
GROUP BY event_date, zone_id, device_key, visitor_class, origin_country, home_municipality
ORDER BY event_date, zone_id, device_key
