-- Source positions: one row per (tenant, source, key). The key names what is being tracked
-- (a file fingerprint, an API organization); the value is source-specific JSON.
CREATE TABLE checkpoints (
    tenant     TEXT NOT NULL,
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, source, key)
) WITHOUT ROWID;

-- Events a sink could not take yet. Delivered in id order, deleted once delivered.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sink       TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX outbox_by_sink ON outbox (sink, id);
