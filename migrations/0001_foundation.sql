-- linli foundation schema. Portable SQL: {{ID}}, {{BLOB}} are replaced per backend
-- by db::migrate; everything else is plain SQL that SQLite and PostgreSQL both accept.
-- Times are BIGINT milliseconds since the Unix epoch (UTC); booleans are BIGINT 0/1.

CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE nodes (
  id {{ID}},
  code TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  parent_id BIGINT REFERENCES nodes(id),
  path TEXT NOT NULL,
  geometry TEXT,
  address TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT '',
  is_demo BIGINT NOT NULL DEFAULT 0,
  retired_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX nodes_parent ON nodes(parent_id);
CREATE INDEX nodes_kind_path ON nodes(kind, path);
CREATE INDEX nodes_path ON nodes(path);

CREATE TABLE persons (
  id {{ID}},
  name TEXT NOT NULL,
  id_enc {{BLOB}},
  id_bidx TEXT,
  phone_enc {{BLOB}},
  phone_bidx TEXT,
  gender TEXT NOT NULL DEFAULT '',
  birth_year BIGINT,
  node_id BIGINT NOT NULL REFERENCES nodes(id),
  room TEXT NOT NULL DEFAULT '',
  tags TEXT NOT NULL DEFAULT '',
  is_demo BIGINT NOT NULL DEFAULT 0,
  retired_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX persons_node ON persons(node_id);
CREATE INDEX persons_id_bidx ON persons(id_bidx);
CREATE INDEX persons_phone_bidx ON persons(phone_bidx);

CREATE TABLE users (
  id {{ID}},
  username TEXT NOT NULL UNIQUE,
  display_name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL,
  scope TEXT NOT NULL,
  scope_path TEXT NOT NULL,
  must_change_password BIGINT NOT NULL DEFAULT 1,
  failed_logins BIGINT NOT NULL DEFAULT 0,
  locked_until BIGINT,
  disabled BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id),
  csrf TEXT NOT NULL,
  ip TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
  id {{ID}},
  user_id BIGINT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT,
  revoked_at BIGINT
);

CREATE TABLE ip_throttle (
  ip TEXT PRIMARY KEY,
  window_start BIGINT NOT NULL,
  failures BIGINT NOT NULL
);

CREATE TABLE audit_head (
  id BIGINT PRIMARY KEY,
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'genesis');

CREATE TABLE audit_log (
  seq BIGINT PRIMARY KEY,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  ip TEXT NOT NULL,
  action TEXT NOT NULL,
  entity TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  node_path TEXT NOT NULL,
  summary TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_at ON audit_log(at);
CREATE INDEX audit_action ON audit_log(action);
