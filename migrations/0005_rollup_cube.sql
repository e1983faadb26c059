-- Coarse rollups ("cube") for rates and rankings whose reads must not grow with the data:
-- the counters of case_rollups summed per dimension (county, street, community, unit) and
-- grain (1 = one local day, period = day number; 32 = a block of 32 days, period = day / 32).
-- A period of a month or a year reads at most 62 day rows and a dozen block rows per member.
-- Unit members are "<county code>:<unit id>". Updated in the same transaction as every change.
CREATE TABLE case_cube (
  dim TEXT NOT NULL,
  grain BIGINT NOT NULL,
  period BIGINT NOT NULL,
  member TEXT NOT NULL,
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
  PRIMARY KEY (dim, grain, period, member)
);
-- Rankings of units below a county read the fine rollups of their communities.
CREATE INDEX case_rollups_community ON case_rollups(community_code, day);
-- The overview counts overdue cases of a scope on this index alone.
CREATE INDEX cases_open_due ON cases(status, node_path, resolve_due);
-- A grid's queue (a grid worker's open cases) without scanning its community or street.
CREATE INDEX cases_grid ON cases(grid_code, status);
