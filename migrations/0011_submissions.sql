-- One case per submission: a form sent twice (a double tap on a slow phone) or a request a
-- program retries under its Idempotency-Key makes one case. The key is claimed in the
-- transaction that creates the case, with what was submitted (a hash: the same key with other
-- content is no repeat); rows older than a day are swept.
CREATE TABLE submissions (
  key TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  case_number TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX submissions_created ON submissions(created_at);
