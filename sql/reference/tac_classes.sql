-- reference.tac_classes: handset class per TAC prefix; the longest matching prefix wins.
SELECT
    trim(CAST(tac_prefix AS VARCHAR)) AS tac_prefix,
    CAST(device_class AS VARCHAR) AS device_class,
    CAST(description AS VARCHAR) AS description
FROM landed_tac_classes
ORDER BY tac_prefix
