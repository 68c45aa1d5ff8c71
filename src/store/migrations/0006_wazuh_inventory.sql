-- Inventory of Wazuh managers (`type: wazuh_api` sources). One row per agent, package, file and
-- OS, updated in place; `item` is the API's JSON, the other columns are copies of the fields
-- queries filter on. Keys lead with (tenant, agent_id) because queries are per tenant and agent;
-- the source is part of every key, so two managers of one tenant never overwrite each other.

-- `removed_at` is set when the manager no longer lists the agent; the row and its inventory stay.
CREATE TABLE wazuh_agents (
    tenant          TEXT NOT NULL,
    source          TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    name            TEXT,
    status          TEXT,
    ip              TEXT,
    os_platform     TEXT,
    last_keep_alive TEXT,
    item            TEXT NOT NULL,
    first_seen      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    removed_at      TEXT,
    PRIMARY KEY (tenant, agent_id, source)
) WITHOUT ROWID;
CREATE INDEX wazuh_agents_by_source ON wazuh_agents (tenant, source);

CREATE TABLE wazuh_packages (
    tenant       TEXT NOT NULL,
    source       TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    architecture TEXT NOT NULL,
    item         TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant, agent_id, name, version, architecture, source)
) WITHOUT ROWID;
-- "Which agents run this package (version)?"
CREATE INDEX wazuh_packages_by_name ON wazuh_packages (tenant, name, version);

CREATE TABLE wazuh_files (
    tenant     TEXT NOT NULL,
    source     TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    path       TEXT NOT NULL,
    sha256     TEXT,
    mtime      TEXT,
    item       TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, agent_id, path, source)
) WITHOUT ROWID;
-- "Where is this file (by hash)?"
CREATE INDEX wazuh_files_by_sha256 ON wazuh_files (tenant, sha256);

CREATE TABLE wazuh_os (
    tenant       TEXT NOT NULL,
    source       TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    os_name      TEXT,
    os_version   TEXT,
    os_platform  TEXT,
    architecture TEXT,
    item         TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant, agent_id, source)
) WITHOUT ROWID;
