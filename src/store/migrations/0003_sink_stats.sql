-- Per-sink delivery statistics and health, written by the running sink every few seconds and
-- read by `sluice status` and the API. Counters are cumulative across restarts.
CREATE TABLE sink_stats (
    sink            TEXT PRIMARY KEY,
    sent            INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    dead_lettered   INTEGER NOT NULL DEFAULT 0,
    filtered        INTEGER NOT NULL DEFAULT 0,
    truncated       INTEGER NOT NULL DEFAULT 0,
    health          TEXT NOT NULL DEFAULT 'unknown',
    health_reason   TEXT,
    last_error      TEXT,
    last_error_at   TEXT,
    last_success_at TEXT,
    updated_at      TEXT NOT NULL
) WITHOUT ROWID;

