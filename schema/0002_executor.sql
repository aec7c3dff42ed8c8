-- scalexd registry, version 2: executors. A job handed to a remote executor (Slurm) keeps
-- the executor's id here, so a restarted scalexd re-attaches to the running unit instead of
-- submitting it again. Portable SQL (SQLite and PostgreSQL).
CREATE TABLE job_executor (
    job_id       TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    executor     TEXT NOT NULL,             -- 'slurm'
    handle       TEXT NOT NULL,             -- the executor's id (Slurm job id)
    raw_state    TEXT,                      -- last state word seen (PENDING, RUNNING, ...)
    done         INTEGER NOT NULL DEFAULT 0, -- 1 once the unit reached a final state
    submitted_ms BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL
);
CREATE INDEX job_executor_live ON job_executor(done, executor);
