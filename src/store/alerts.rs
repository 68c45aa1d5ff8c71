//! Wazuh alerts received on the webhook, each once, for the alert queries.

use rusqlite::params;
use serde::Serialize;

use super::{Store, now};

#[derive(Debug, Clone, Serialize)]
pub struct StoredAlert {
    pub alert_id: String,
    pub agent_id: String,
    pub risk_score: i64,
    pub time: String,
    pub alert: serde_json::Value,
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

    /// A tenant's webhook alerts, newest first, filtered (risk scores in `min_risk..below_risk`);
    /// paged by `before` = (time, alert_id) of the last row of the previous page.
    #[allow(clippy::too_many_arguments)]
    pub async fn wazuh_alerts(
        &self,
        tenant: &str,
        agent_id: Option<&str>,
        (min_risk, below_risk): (Option<u8>, Option<i64>),
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
                 AND (?2 IS NULL OR agent_id = ?2) AND (?3 IS NULL OR risk_score >= ?3) AND (?9 IS NULL OR risk_score < ?9) \
                 AND (?4 IS NULL OR time >= ?4) AND (?5 IS NULL OR time < ?5) \
                 AND (?6 IS NULL OR time < ?6 OR (time = ?6 AND alert_id < ?7)) \
                 ORDER BY time DESC, alert_id DESC LIMIT ?8",
            )?;
            let rows =
                stmt.query_map(params![tenant, agent_id, min_risk, since, until, before_time, before_id, limit as i64, below_risk], |r| {
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
}
