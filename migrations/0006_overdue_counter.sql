-- A 15th counter: running cases past their deadline (the SLA job's red card, warn_level >= 2).
-- It is a state, not an event: +1 when the card is shown, -1 when the case stops running or
-- its clock restarts, on the case's creation-day row like every counter, so the current
-- overdue count of any scope is an all-time sum of the cube instead of a count of open cases.
ALTER TABLE case_rollups ADD COLUMN overdue BIGINT NOT NULL DEFAULT 0;
ALTER TABLE case_cube ADD COLUMN overdue BIGINT NOT NULL DEFAULT 0;

-- Existing databases: count the cases already overdue (every one has its rollup row and cells).
UPDATE case_rollups SET overdue = s.n FROM (
  SELECT CAST((created_at + 28800000) / 86400000 AS BIGINT) AS day, community_code, COALESCE(unit_id, 0) AS unit_id, category_id,
         CAST(COUNT(*) AS BIGINT) AS n
  FROM cases WHERE status IN ('registered', 'dispatched', 'accepted') AND warn_level >= 2
  GROUP BY CAST((created_at + 28800000) / 86400000 AS BIGINT), community_code, COALESCE(unit_id, 0), category_id
) s
WHERE case_rollups.day = s.day AND case_rollups.community_code = s.community_code
  AND case_rollups.unit_id = s.unit_id AND case_rollups.category_id = s.category_id;

UPDATE case_cube SET overdue = s.n FROM (
  SELECT CAST('county' AS TEXT) AS dim, CAST(1 AS BIGINT) AS grain, day AS period, SUBSTR(community_code, 1, 6) AS member, CAST(SUM(overdue) AS BIGINT) AS n
  FROM case_rollups WHERE overdue > 0 GROUP BY day, SUBSTR(community_code, 1, 6)
  UNION ALL
  SELECT CAST('county' AS TEXT) AS dim, CAST(32 AS BIGINT) AS grain, day / 32 AS period, SUBSTR(community_code, 1, 6) AS member, CAST(SUM(overdue) AS BIGINT) AS n
  FROM case_rollups WHERE overdue > 0 GROUP BY day / 32, SUBSTR(community_code, 1, 6)
  UNION ALL
  SELECT CAST('street' AS TEXT) AS dim, CAST(1 AS BIGINT) AS grain, day AS period, SUBSTR(community_code, 1, 9) AS member, CAST(SUM(overdue) AS BIGINT) AS n
  FROM case_rollups WHERE overdue > 0 GROUP BY day, SUBSTR(community_code, 1, 9)
  UNION ALL
  SELECT CAST('street' AS TEXT) AS dim, CAST(32 AS BIGINT) AS grain, day / 32 AS period, SUBSTR(community_code, 1, 9) AS member, CAST(SUM(overdue) AS BIGINT) AS n
  FROM case_rollups WHERE overdue > 0 GROUP BY day / 32, SUBSTR(community_code, 1, 9)
  UNION ALL
  SELECT CAST('community' AS TEXT) AS dim, CAST(1 AS BIGINT) AS grain, day AS period, community_code AS member, CAST(SUM(overdue) AS BIGINT) AS n
  FROM case_rollups WHERE overdue > 0 GROUP BY day, community_code
  UNION ALL
  SELECT CAST('community' AS TEXT) AS dim, CAST(32 AS BIGINT) AS grain, day / 32 AS period, community_code AS member, CAST(SUM(overdue) AS BIGINT) AS n
  FROM case_rollups WHERE overdue > 0 GROUP BY day / 32, community_code
  UNION ALL
  SELECT CAST('unit' AS TEXT) AS dim, CAST(1 AS BIGINT) AS grain, day AS period, SUBSTR(community_code, 1, 6) || ':' || CAST(unit_id AS TEXT) AS member, CAST(SUM(overdue) AS BIGINT) AS n
  FROM case_rollups WHERE overdue > 0 AND unit_id > 0 GROUP BY day, SUBSTR(community_code, 1, 6) || ':' || CAST(unit_id AS TEXT)
  UNION ALL
  SELECT CAST('unit' AS TEXT) AS dim, CAST(32 AS BIGINT) AS grain, day / 32 AS period, SUBSTR(community_code, 1, 6) || ':' || CAST(unit_id AS TEXT) AS member, CAST(SUM(overdue) AS BIGINT) AS n
  FROM case_rollups WHERE overdue > 0 AND unit_id > 0 GROUP BY day / 32, SUBSTR(community_code, 1, 6) || ':' || CAST(unit_id AS TEXT)
) s
WHERE case_cube.dim = s.dim AND case_cube.grain = s.grain AND case_cube.period = s.period AND case_cube.member = s.member;
