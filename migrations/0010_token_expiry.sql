-- Personal access tokens expire (issued for 180 days unless asked otherwise, at most ten
-- years). Tokens issued before keep no end (NULL), as they were promised.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
