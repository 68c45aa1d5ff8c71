-- SIEM connections created through the API (the original SIEM integration module's /api/v1/siem/connections). Each is a
-- sink like one from the config file: started with it, reloaded with it, routed for its tenant.
-- `definition` is the connection as posted, secrets included: they are never returned by the
-- API nor logged, and the store file is readable by sluice's user only.
CREATE TABLE api_sinks (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
