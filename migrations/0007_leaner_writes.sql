-- Fewer B-tree writes per case (measured: a batch of 22 creations wrote 90 WAL pages, a quarter
-- of them search postings).
--
-- Search postings become one B-tree keyed by (term, case_id): on SQLite a WITHOUT ROWID table,
-- instead of a rowid table plus the index of its primary key (two inserts per posting). The
-- foreign key goes: it cost one lookup in `cases` per posting (fifteen per creation, a row lock
-- each on PostgreSQL); postings are written only with their case, in the same transaction, and
-- every search joins them to `cases`, so an orphan could never be shown.
CREATE TABLE case_terms_new (
  term TEXT NOT NULL,
  case_id BIGINT NOT NULL,
  CONSTRAINT case_terms_key PRIMARY KEY (term, case_id)
){{WITHOUT_ROWID}};
INSERT INTO case_terms_new (term, case_id) SELECT term, case_id FROM case_terms;
DROP TABLE case_terms;
ALTER TABLE case_terms_new RENAME TO case_terms;

-- Columns that stay empty on most rows are indexed only where they are set: a new case has no
-- unit and no assignee yet, a notification names a user or a unit (not both), many cases come
-- without a phone. Every query on them compares them with a value, which implies NOT NULL, so
-- both engines still use these indexes.
DROP INDEX cases_unit;
CREATE INDEX cases_unit ON cases(unit_id, status) WHERE unit_id IS NOT NULL;
DROP INDEX cases_assignee_user;
CREATE INDEX cases_assignee_user ON cases(assignee_user_id, status) WHERE assignee_user_id IS NOT NULL;
DROP INDEX cases_phone;
CREATE INDEX cases_phone ON cases(reporter_phone_bidx) WHERE reporter_phone_bidx IS NOT NULL;
DROP INDEX notifications_user;
CREATE INDEX notifications_user ON notifications(user_id, id) WHERE user_id IS NOT NULL;
DROP INDEX notifications_unit;
CREATE INDEX notifications_unit ON notifications(unit_id, id) WHERE unit_id IS NOT NULL;

-- `cases_open_due (status, node_path, resolve_due)` starts with the status: it serves every
-- lookup `cases_status` served, which was one more index to write on every creation and step.
DROP INDEX cases_status;
