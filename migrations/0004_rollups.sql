-- Incremental counters behind the rates: one row per (local creation day, community, unit,
-- category), updated in the same transaction as every change of a case.

CREATE TABLE case_rollups (
  day BIGINT NOT NULL,
  community_code TEXT NOT NULL,
  unit_id BIGINT NOT NULL,
  category_id BIGINT NOT NULL,
  cases BIGINT NOT NULL DEFAULT 0,
  valid BIGINT NOT NULL DEFAULT 0,
  contacted BIGINT NOT NULL DEFAULT 0,
  solved BIGINT NOT NULL DEFAULT 0,
  satisfied BIGINT NOT NULL DEFAULT 0,
  basic BIGINT NOT NULL DEFAULT 0,
  closed BIGINT NOT NULL DEFAULT 0,
  on_time BIGINT NOT NULL DEFAULT 0,
  finished BIGINT NOT NULL DEFAULT 0,
  reworked BIGINT NOT NULL DEFAULT 0,
  dispatched BIGINT NOT NULL DEFAULT 0,
  extended BIGINT NOT NULL DEFAULT 0,
  accepted BIGINT NOT NULL DEFAULT 0,
  signed_in_time BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (day, community_code, unit_id, category_id)
);
