//! Usage per tenant and day: events, bytes and vendor API calls, for billing.

use rusqlite::params;
use serde::Serialize;

use super::Store;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    pub day: String,
    pub events: u64,
    pub bytes: u64,
    pub api_calls: u64,
}

impl Store {
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
