-- API bearer tokens. Only the SHA-256 of a token is kept; the token itself is shown once.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,          -- admin | reader | ingest
    tenant     TEXT,                   -- NULL: every tenant
    name       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT
) WITHOUT ROWID;

-- Wazuh alerts received on the webhook, one row per Wazuh alert id and tenant. `routed` turns 1
-- once the tenant's sinks hold the alert: a retried POST of an alert stored but not yet routed
-- (the process stopped in between) is routed then, never twice.
CREATE TABLE wazuh_alerts (
    tenant      TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    rule_id     TEXT,
    rule_level  INTEGER,
    risk_score  INTEGER NOT NULL,
    category    TEXT NOT NULL,
    time        TEXT NOT NULL,          -- the alert's timestamp, UTC RFC 3339
    received_at TEXT NOT NULL,
    alert       TEXT NOT NULL,          -- the enriched alert JSON
    routed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, alert_id)
) WITHOUT ROWID;
CREATE INDEX wazuh_alerts_by_agent ON wazuh_alerts (tenant, agent_id, time);
CREATE INDEX wazuh_alerts_by_time ON wazuh_alerts (tenant, time);

-- Usage per tenant and UTC day, for billing: events and bytes taken in, API requests made by
-- the tenant's tokens.
CREATE TABLE usage (
    tenant    TEXT NOT NULL,
    day       TEXT NOT NULL,            -- YYYY-MM-DD
    events    INTEGER NOT NULL DEFAULT 0,
    bytes     INTEGER NOT NULL DEFAULT 0,
    api_calls INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day)
) WITHOUT ROWID;
