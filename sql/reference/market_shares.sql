-- reference.market_shares: the operator's share of each country's roaming SIMs. Countries that
-- roaming_shares.csv does not list get the documented default ($default_roaming_share).
WITH
delivered AS (
    SELECT upper(trim(CAST(country_iso2 AS VARCHAR))) AS country_iso2, CAST(share AS DOUBLE) AS share
    FROM landed_roaming_shares
),

countries AS (
    SELECT DISTINCT country_iso2 FROM reference.mcc_countries WHERE country_iso2 IS NOT NULL
)

SELECT
    countries.country_iso2,
    coalesce(delivered.share, $default_roaming_share) AS roaming_share,
    CASE WHEN delivered.share IS NULL THEN 'default' ELSE 'roaming_shares.csv' END AS source
FROM countries
LEFT JOIN delivered USING (country_iso2)
ORDER BY countries.country_iso2
