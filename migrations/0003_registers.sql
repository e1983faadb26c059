-- One table for the registers of the five systems: each row a JSON document, scoped by the
-- tree path of its scope field; `search` holds text and pinyin for the search box.

CREATE TABLE register_rows (
  id {{ID}},
  register TEXT NOT NULL,
  node_path TEXT NOT NULL,
  name TEXT NOT NULL,
  search TEXT NOT NULL,
  data TEXT NOT NULL,
  is_demo BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  retired_at BIGINT,
  version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX register_rows_reg ON register_rows(register, node_path);
