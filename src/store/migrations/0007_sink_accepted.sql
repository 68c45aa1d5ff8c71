-- What each sink accepted lately (delivered, or held in its outbox): 64-bit keys of the events'
-- (tenant, source, id), one row per accepted write. After a crash, sources repeat what they had
-- read ahead of their saved positions; a sink skips what these rows say it already has, so its
-- duplicates are bounded by its own writes in flight, not by the sources' read-ahead.
CREATE TABLE sink_accepted (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    at   INTEGER NOT NULL,   -- unix milliseconds
    keys BLOB NOT NULL       -- little-endian u64s
);
CREATE INDEX sink_accepted_by_sink ON sink_accepted (sink, id);
