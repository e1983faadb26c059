-- The case loop: units, categories, the working-day calendar, cases and their history,
-- photos, search terms, notifications, webhooks and the job table.

CREATE TABLE counters (
  name TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);

CREATE TABLE units (
  id {{ID}},
  code TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  contact_name TEXT NOT NULL DEFAULT '',
  contact_phone TEXT NOT NULL DEFAULT '',
  communities TEXT NOT NULL DEFAULT '',
  node_path TEXT NOT NULL,
  is_demo BIGINT NOT NULL DEFAULT 0,
  retired_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- A unit contact's account belongs to one unit and sees only its cases.
ALTER TABLE users ADD COLUMN unit_id BIGINT REFERENCES units(id);

CREATE TABLE categories (
  id {{ID}},
  code TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  grp TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  sign_hours DOUBLE PRECISION NOT NULL,
  resolve_hours DOUBLE PRECISION NOT NULL,
  unit_kind TEXT NOT NULL DEFAULT '',
  default_unit_id BIGINT REFERENCES units(id),
  claimable BIGINT NOT NULL DEFAULT 0,
  attrs TEXT NOT NULL DEFAULT '[]',
  active BIGINT NOT NULL DEFAULT 1,
  sort BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE calendar_days (
  day TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT ''
);

CREATE TABLE cases (
  id {{ID}},
  number TEXT NOT NULL UNIQUE,
  category_id BIGINT NOT NULL REFERENCES categories(id),
  title TEXT NOT NULL,
  description TEXT NOT NULL,
  channel TEXT NOT NULL,
  status TEXT NOT NULL,
  lng DOUBLE PRECISION,
  lat DOUBLE PRECISION,
  address TEXT NOT NULL DEFAULT '',
  grid_code TEXT NOT NULL DEFAULT '',
  community_code TEXT NOT NULL DEFAULT '',
  node_path TEXT NOT NULL,
  level BIGINT NOT NULL DEFAULT 0,
  reporter_user_id BIGINT,
  reporter_name_enc {{BLOB}},
  reporter_phone_enc {{BLOB}},
  reporter_phone_bidx TEXT,
  private BIGINT NOT NULL DEFAULT 0,
  assignee_kind TEXT NOT NULL DEFAULT '',
  assignee_ref TEXT NOT NULL DEFAULT '',
  assignee_name TEXT NOT NULL DEFAULT '',
  unit_id BIGINT,
  assignee_user_id BIGINT,
  created_at BIGINT NOT NULL,
  registered_at BIGINT,
  dispatched_at BIGINT,
  accepted_at BIGINT,
  finished_at BIGINT,
  closed_at BIGINT,
  sign_due BIGINT,
  resolve_due BIGINT,
  clock_start BIGINT,
  yellow_at BIGINT,
  warn_level BIGINT NOT NULL DEFAULT 0,
  extension_hours DOUBLE PRECISION,
  extension_count BIGINT NOT NULL DEFAULT 0,
  rework_count BIGINT NOT NULL DEFAULT 0,
  return_count BIGINT NOT NULL DEFAULT 0,
  contacted BIGINT,
  solved BIGINT,
  satisfaction TEXT,
  rating_comment TEXT NOT NULL DEFAULT '',
  attrs TEXT NOT NULL DEFAULT '{}',
  version BIGINT NOT NULL DEFAULT 1,
  updated_at BIGINT NOT NULL
);
CREATE INDEX cases_status ON cases(status);
CREATE INDEX cases_path ON cases(node_path);
CREATE INDEX cases_unit ON cases(unit_id, status);
CREATE INDEX cases_assignee_user ON cases(assignee_user_id, status);
CREATE INDEX cases_created ON cases(created_at);
CREATE INDEX cases_phone ON cases(reporter_phone_bidx);

CREATE TABLE case_history (
  id {{ID}},
  case_id BIGINT NOT NULL REFERENCES cases(id),
  action TEXT NOT NULL,
  from_status TEXT NOT NULL,
  to_status TEXT NOT NULL,
  actor TEXT NOT NULL,
  actor_label TEXT NOT NULL DEFAULT '',
  at BIGINT NOT NULL,
  note TEXT NOT NULL DEFAULT '',
  public BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX case_history_case ON case_history(case_id, id);

CREATE TABLE case_photos (
  id {{ID}},
  case_id BIGINT NOT NULL REFERENCES cases(id),
  history_id BIGINT,
  path TEXT NOT NULL,
  mime TEXT NOT NULL,
  size BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX case_photos_case ON case_photos(case_id);

CREATE TABLE case_terms (
  term TEXT NOT NULL,
  case_id BIGINT NOT NULL REFERENCES cases(id),
  PRIMARY KEY (term, case_id)
);

CREATE TABLE notifications (
  id {{ID}},
  user_id BIGINT,
  unit_id BIGINT,
  node_path TEXT NOT NULL DEFAULT '',
  audience TEXT NOT NULL DEFAULT '',
  case_id BIGINT,
  kind TEXT NOT NULL,
  text TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  read_at BIGINT
);
CREATE INDEX notifications_user ON notifications(user_id, id);
CREATE INDEX notifications_unit ON notifications(unit_id, id);

CREATE TABLE webhooks (
  id {{ID}},
  unit_id BIGINT,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  active BIGINT NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL
);

CREATE TABLE jobs (
  id {{ID}},
  kind TEXT NOT NULL,
  dedup_key TEXT NOT NULL UNIQUE,
  payload TEXT NOT NULL DEFAULT '{}',
  run_at BIGINT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  locked_by TEXT,
  locked_until BIGINT,
  done_at BIGINT,
  last_error TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs(done_at, run_at);
