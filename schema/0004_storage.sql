-- scalexd registry, version 4: per-user storage. A finished job's result folder size is kept,
-- so a user's storage (datasets + results) is one query, checked against user_storage_quota.
-- Portable SQL (SQLite and PostgreSQL).
ALTER TABLE jobs ADD COLUMN result_bytes BIGINT NOT NULL DEFAULT 0;
