-- scalexd registry, version 3: the instance that claimed a job. Several scalexd instances
-- can share one PostgreSQL registry; a restarted instance re-queues only the jobs it was
-- running itself, not the ones another instance runs now. Portable SQL (SQLite and
-- PostgreSQL).
ALTER TABLE jobs ADD COLUMN runner TEXT;
