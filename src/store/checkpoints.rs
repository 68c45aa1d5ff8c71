//! Source positions: a small text value per (tenant, source, key), saved once what it covers is durable.

use rusqlite::{OptionalExtension, params};

use super::{Store, now};

impl Store {
    pub async fn checkpoint(&self, tenant: &str, source: &str, key: &str) -> anyhow::Result<Option<String>> {
        let (t, s, k) = (tenant.to_string(), source.to_string(), key.to_string());
        self.with(move |c| {
            c.query_row("SELECT value FROM checkpoints WHERE tenant = ?1 AND source = ?2 AND key = ?3", params![t, s, k], |r| r.get(0))
                .optional()
        })
        .await
    }

    pub async fn set_checkpoint(&self, tenant: &str, source: &str, key: &str, value: String) -> anyhow::Result<()> {
        let (t, s, k) = (tenant.to_string(), source.to_string(), key.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO checkpoints (tenant, source, key, value, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant, source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![t, s, k, value, now()],
            )
            .map(|_| ())
        })
        .await
    }

    /// Every checkpoint of one source, as (key, value).
    pub async fn checkpoints(&self, tenant: &str, source: &str) -> anyhow::Result<Vec<(String, String)>> {
        let (t, s) = (tenant.to_string(), source.to_string());
        self.with(move |c| {
            let mut stmt = c.prepare("SELECT key, value FROM checkpoints WHERE tenant = ?1 AND source = ?2")?;
            let rows = stmt.query_map(params![t, s], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }
}
