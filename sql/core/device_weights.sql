-- core.device_weights: each device's extrapolation weight for the day (1 / the operator's share
-- of the population it stands for) and the relative variance of that share.
--   Swedish SIM with a known home: share of that municipality's residents, measured from the
--     data (devices with that home seen in the trailing window / population); relative
--     variance (1 - p) / subscribers.
--   Swedish SIM with unknown home: the national share (all homed devices / all residents).
--   Foreign SIM: the operator's share of that country's roamers (reference.market_shares),
--     with a relative standard error of $roaming_share_rel_se.
WITH
-- Not every subscriber is seen every day (a phone at rest for days): the subscribers of a
-- municipality are the devices with that home seen on any of the last $share_window_days days.
days AS (
    SELECT CAST(unnest(range(CAST($first_day AS TIMESTAMP), CAST($last_day AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS event_date
),

latest_homes AS (
    SELECT days.event_date, homes.device_key, arg_max(homes.home_municipality, homes.event_date) AS municipality_code
    FROM days
    JOIN core.device_homes AS homes
        ON homes.event_date BETWEEN days.event_date - CAST($share_window_days AS INTEGER) + 1 AND days.event_date
    GROUP BY ALL
),

subscribers_per_municipality AS (
    SELECT event_date, municipality_code, count(*) AS subscribers
    FROM latest_homes
    WHERE municipality_code IS NOT NULL
    GROUP BY ALL
),

municipality_shares AS (
    SELECT
        subscribers.event_date,
        subscribers.municipality_code,
        subscribers.subscribers,
        municipalities.population,
        least(subscribers.subscribers / municipalities.population, 1.0) AS share
    FROM subscribers_per_municipality AS subscribers
    JOIN reference.municipalities AS municipalities USING (municipality_code)
    WHERE municipalities.population > 0
),

national_shares AS (
    SELECT
        event_date,
        sum(subscribers) AS subscribers,
        least(sum(subscribers) / sum(population), 1.0) AS share
    FROM municipality_shares
    GROUP BY event_date
),

devices_of_day AS (
    SELECT devices.event_date, devices.device_key, devices.home_mcc, devices.origin_country, homes.home_municipality
    FROM core.devices AS devices
    LEFT JOIN core.device_homes AS homes USING (event_date, device_key)
    WHERE devices.event_date BETWEEN $first_day AND $last_day AND NOT devices.is_machine
)

SELECT
    devices.event_date,
    devices.device_key,
    CASE
        WHEN devices.home_mcc <> '240' AND roaming.roaming_share IS NOT NULL THEN 'country'
        WHEN municipality.share IS NOT NULL THEN 'municipality'
        ELSE 'national'
    END AS share_basis,
    CASE
        WHEN devices.home_mcc <> '240' AND roaming.roaming_share IS NOT NULL THEN devices.origin_country
        WHEN municipality.share IS NOT NULL THEN devices.home_municipality
        ELSE 'SE'
    END AS share_group,
    CASE
        WHEN devices.home_mcc <> '240' AND roaming.roaming_share IS NOT NULL THEN roaming.roaming_share
        WHEN municipality.share IS NOT NULL THEN municipality.share
        ELSE coalesce(national.share, $default_national_share)  -- before any home is known
    END AS share,
    CASE
        WHEN devices.home_mcc <> '240' AND roaming.roaming_share IS NOT NULL THEN $roaming_share_rel_se * $roaming_share_rel_se
        WHEN municipality.share IS NOT NULL THEN (1 - municipality.share) / municipality.subscribers
        ELSE coalesce((1 - national.share) / national.subscribers, $roaming_share_rel_se * $roaming_share_rel_se)
    END AS share_rel_var
FROM devices_of_day AS devices
LEFT JOIN municipality_shares AS municipality
    ON municipality.event_date = devices.event_date AND municipality.municipality_code = devices.home_municipality
LEFT JOIN national_shares AS national ON national.event_date = devices.event_date
LEFT JOIN reference.market_shares AS roaming ON roaming.country_iso2 = devices.origin_country
ORDER BY devices.event_date, devices.device_key
