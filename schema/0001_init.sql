-- scalexd registry, version 1. Forward-only: never edit a released migration, add NNNN_*.sql.
-- Times are integer milliseconds since the Unix epoch (UTC).
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    is_admin   INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);

-- bearer tokens, stored as sha256 hex of the token: a leaked registry leaks no token
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    created_ms INTEGER NOT NULL
);

CREATE TABLE datasets (
    id          TEXT PRIMARY KEY,
    owner       INTEGER NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    format      TEXT NOT NULL,
    path        TEXT NOT NULL,          -- relative to the data dir
    sha256      TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    n_obs       INTEGER NOT NULL,
    n_vars      INTEGER NOT NULL,
    obs_columns TEXT NOT NULL DEFAULT '[]', -- JSON array of {name, kind, n_categories}
    created_ms  INTEGER NOT NULL
);
CREATE INDEX datasets_owner ON datasets(owner, created_ms);

CREATE TABLE refs (
    name        TEXT PRIMARY KEY,
    path        TEXT NOT NULL,          -- folder relative to the data dir
    owner       INTEGER REFERENCES users(id),
    job_id      TEXT,
    description TEXT,
    species     TEXT,
    tissue      TEXT,
    summary     TEXT NOT NULL DEFAULT '{}', -- JSON: cells, genes, label_columns, model_version
    created_ms  INTEGER NOT NULL
);

-- states are GA4GH TES names
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    owner       INTEGER NOT NULL REFERENCES users(id),
    type        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('QUEUED','INITIALIZING','RUNNING','COMPLETE',
                   'EXECUTOR_ERROR','SYSTEM_ERROR','CANCELING','CANCELED')),
    stage       TEXT,
    progress    REAL NOT NULL DEFAULT 0,
    message     TEXT,
    request     TEXT NOT NULL,          -- JSON: datasets, reference, options
    error_type  TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    started_ms  INTEGER,
    finished_ms INTEGER
);
CREATE INDEX jobs_owner_state ON jobs(owner, state, created_ms);
CREATE INDEX jobs_state ON jobs(state, created_ms);
