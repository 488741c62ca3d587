-- reference.mcc_countries: ITU E.212 mobile country codes (kept in the repo as CSV).
SELECT
    CAST(mcc AS VARCHAR) AS mcc,
    nullif(CAST(country_iso2 AS VARCHAR), 'XX') AS country_iso2,
    CAST(country_name AS VARCHAR) AS country_name
FROM landed_mcc_countries
ORDER BY mcc
