//! SIEM connections created through the API, which run like sinks of the config file.

use rusqlite::params;

use super::{Store, now};

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
}
