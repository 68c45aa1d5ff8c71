-- Events a sink refused for good (a 4xx that will never succeed), with the reason. Kept for
-- inspection and retry; never silently dropped.
CREATE TABLE dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sink       TEXT NOT NULL,
    payload    BLOB NOT NULL,
    error      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX dead_letters_by_sink ON dead_letters (sink, id);
