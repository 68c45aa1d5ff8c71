//! What the REST API keeps: tokens (hashed), Wazuh webhook alerts, usage per tenant and day.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, now};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub role: String,
    pub tenant: Option<String>,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredAlert {
    pub alert_id: String,
    pub agent_id: String,
    pub risk_score: i64,
    pub time: String,
    pub alert: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    pub day: String,
    pub events: u64,
    pub bytes: u64,
    pub api_calls: u64,
}

fn token_row(r: &rusqlite::Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord { id: r.get(0)?, role: r.get(1)?, tenant: r.get(2)?, name: r.get(3)?, created_at: r.get(4)?, revoked_at: r.get(5)? })
}

/// How a webhook alert was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertInsert {
    /// First time seen: route it.
    New,
    /// Seen, but not routed yet (a retry after a crash): route it.
    NotRouted,
    /// Seen and routed: nothing to do.
    Duplicate,
}

impl Store {
    pub async fn create_token(&self, id: &str, hash: &str, role: &str, tenant: Option<&str>, name: &str) -> anyhow::Result<()> {
        let (id, hash, role, tenant, name) =
            (id.to_string(), hash.to_string(), role.to_string(), tenant.map(str::to_string), name.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO api_tokens (id, hash, role, tenant, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, hash, role, tenant, name, now()],
            )
            .map(|_| ())
        })
        .await
    }

    /// The live (not revoked) token with this hash.
    pub async fn token_by_hash(&self, hash: &str) -> anyhow::Result<Option<TokenRecord>> {
        let hash = hash.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT id, role, tenant, name, created_at, revoked_at FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL",
                params![hash],
                token_row,
            )
            .optional()
        })
        .await
    }

    /// Tokens, all or those of one tenant, oldest first.
    pub async fn tokens(&self, tenant: Option<&str>) -> anyhow::Result<Vec<TokenRecord>> {
        let tenant = tenant.map(str::to_string);
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, role, tenant, name, created_at, revoked_at FROM api_tokens \
                 WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map(params![tenant], token_row)?;
            rows.collect()
        })
        .await
    }

    /// Revokes a token (of `tenant` only, when given). Returns whether one was revoked.
    pub async fn revoke_token(&self, id: &str, tenant: Option<&str>) -> anyhow::Result<bool> {
        let (id, tenant) = (id.to_string(), tenant.map(str::to_string));
        self.with(move |c| {
            c.execute(
                "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND revoked_at IS NULL AND (?2 IS NULL OR tenant = ?2)",
                params![id, tenant, now()],
            )
            .map(|n| n > 0)
        })
        .await
    }

    /// Stores a webhook alert unless it is there; says what to do with it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_wazuh_alert(
        &self,
        tenant: &str,
        alert_id: &str,
        agent_id: &str,
        rule_id: Option<&str>,
        rule_level: Option<i64>,
        risk_score: u8,
        category: &str,
        time: &str,
        alert: &str,
    ) -> anyhow::Result<AlertInsert> {
        let (tenant, alert_id, agent_id, rule_id, category, time, alert) = (
            tenant.to_string(),
            alert_id.to_string(),
            agent_id.to_string(),
            rule_id.map(str::to_string),
            category.to_string(),
            time.to_string(),
            alert.to_string(),
        );
        self.with(move |c| {
            let inserted = c.execute(
                "INSERT OR IGNORE INTO wazuh_alerts (tenant, alert_id, agent_id, rule_id, rule_level, risk_score, category, time, \
                 received_at, alert) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![tenant, alert_id, agent_id, rule_id, rule_level, risk_score, category, time, now(), alert],
            )?;
            if inserted == 1 {
                return Ok(AlertInsert::New);
            }
            let routed: i64 =
                c.query_row("SELECT routed FROM wazuh_alerts WHERE tenant = ?1 AND alert_id = ?2", params![tenant, alert_id], |r| {
                    r.get(0)
                })?;
            Ok(if routed == 1 { AlertInsert::Duplicate } else { AlertInsert::NotRouted })
        })
        .await
    }

    pub(crate) async fn mark_wazuh_alert_routed(&self, tenant: &str, alert_id: &str) -> anyhow::Result<()> {
        let (tenant, alert_id) = (tenant.to_string(), alert_id.to_string());
        self.with(move |c| {
            c.execute("UPDATE wazuh_alerts SET routed = 1 WHERE tenant = ?1 AND alert_id = ?2", params![tenant, alert_id]).map(|_| ())
        })
        .await
    }

    /// A tenant's webhook alerts, newest first, filtered; paged by `before` = (time, alert_id)
    /// of the last row of the previous page.
    #[allow(clippy::too_many_arguments)]
    pub async fn wazuh_alerts(
        &self,
        tenant: &str,
        agent_id: Option<&str>,
        min_risk: Option<u8>,
        since: Option<&str>,
        until: Option<&str>,
        before: Option<(String, String)>,
        limit: usize,
    ) -> anyhow::Result<Vec<StoredAlert>> {
        let (tenant, agent_id, since, until) =
            (tenant.to_string(), agent_id.map(str::to_string), since.map(str::to_string), until.map(str::to_string));
        let (before_time, before_id) = before.unzip();
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT alert_id, agent_id, risk_score, time, alert FROM wazuh_alerts WHERE tenant = ?1 \
                 AND (?2 IS NULL OR agent_id = ?2) AND (?3 IS NULL OR risk_score >= ?3) \
                 AND (?4 IS NULL OR time >= ?4) AND (?5 IS NULL OR time < ?5) \
                 AND (?6 IS NULL OR time < ?6 OR (time = ?6 AND alert_id < ?7)) \
                 ORDER BY time DESC, alert_id DESC LIMIT ?8",
            )?;
            let rows = stmt.query_map(params![tenant, agent_id, min_risk, since, until, before_time, before_id, limit as i64], |r| {
                let alert: String = r.get(4)?;
                Ok(StoredAlert {
                    alert_id: r.get(0)?,
                    agent_id: r.get(1)?,
                    risk_score: r.get(2)?,
                    time: r.get(3)?,
                    alert: serde_json::from_str(&alert).unwrap_or(serde_json::Value::Null),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Adds to a tenant's usage of today (UTC).
    pub async fn add_usage(&self, tenant: &str, events: u64, bytes: u64, api_calls: u64) -> anyhow::Result<()> {
        let tenant = tenant.to_string();
        let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO usage (tenant, day, events, bytes, api_calls) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (tenant, day) DO UPDATE SET events = events + ?3, bytes = bytes + ?4, api_calls = api_calls + ?5",
                params![tenant, day, events as i64, bytes as i64, api_calls as i64],
            )
            .map(|_| ())
        })
        .await
    }

    /// A tenant's usage per day in `[from, to]` (YYYY-MM-DD, inclusive), oldest first.
    pub async fn usage(&self, tenant: &str, from: Option<&str>, to: Option<&str>) -> anyhow::Result<Vec<UsageRow>> {
        let (tenant, from, to) = (tenant.to_string(), from.map(str::to_string), to.map(str::to_string));
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT day, events, bytes, api_calls FROM usage WHERE tenant = ?1 AND (?2 IS NULL OR day >= ?2) \
                 AND (?3 IS NULL OR day <= ?3) ORDER BY day",
            )?;
            let rows = stmt.query_map(params![tenant, from, to], |r| {
                Ok(UsageRow {
                    day: r.get(0)?,
                    events: r.get::<_, i64>(1)? as u64,
                    bytes: r.get::<_, i64>(2)? as u64,
                    api_calls: r.get::<_, i64>(3)? as u64,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

/// A SIEM connection created through the API, as stored.
#[derive(Debug, Clone)]
pub struct ApiSink {
    pub id: String,
    pub tenant: String,
    pub definition: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

impl Store {
    pub async fn api_sinks(&self) -> anyhow::Result<Vec<ApiSink>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT id, tenant, definition, created_at, updated_at FROM api_sinks ORDER BY created_at, id")?;
            let rows = stmt.query_map([], |r| {
                let definition: String = r.get(2)?;
                Ok(ApiSink {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    definition: serde_json::from_str(&definition).unwrap_or(serde_json::Value::Null),
                    created_at: r.get(3)?,
                    updated_at: r.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Inserts or replaces a connection.
    pub async fn put_api_sink(&self, id: &str, tenant: &str, definition: &serde_json::Value) -> anyhow::Result<()> {
        let (id, tenant, definition) = (id.to_string(), tenant.to_string(), definition.to_string());
        self.with(move |c| {
            let now = now();
            c.execute(
                "INSERT INTO api_sinks (id, tenant, definition, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (id) DO UPDATE SET tenant = ?2, definition = ?3, updated_at = ?4",
                params![id, tenant, definition, now],
            )
            .map(|_| ())
        })
        .await
    }

    pub async fn delete_api_sink(&self, id: &str) -> anyhow::Result<bool> {
        let id = id.to_string();
        self.with(move |c| c.execute("DELETE FROM api_sinks WHERE id = ?1", params![id]).map(|n| n > 0)).await
    }

    /// Moves a sink's dead letters younger than `max_age` back to its outbox (seed 003's
    /// retry-failed). Returns how many.
    pub async fn retry_dead_letters(&self, sink: &str, max_age: chrono::Duration) -> anyhow::Result<u64> {
        let sink = sink.to_string();
        let since = (chrono::Utc::now() - max_age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.with(move |c| {
            let tx = c.transaction()?;
            let moved = tx.execute(
                "INSERT INTO outbox (sink, payload, created_at) SELECT sink, payload, created_at FROM dead_letters \
                 WHERE sink = ?1 AND created_at >= ?2 ORDER BY id",
                params![sink, since],
            )?;
            tx.execute("DELETE FROM dead_letters WHERE sink = ?1 AND created_at >= ?2", params![sink, since])?;
            tx.commit()?;
            Ok(moved as u64)
        })
        .await
    }
}
