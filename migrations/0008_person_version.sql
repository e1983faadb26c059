-- A person's record carries a version, as nodes and register rows do: an edit applies only to
-- the version it was made from, so of two edits made from one version the second is refused
-- (409) instead of silently undoing the first.
ALTER TABLE persons ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
