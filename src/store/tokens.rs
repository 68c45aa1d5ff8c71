//! The REST API's bearer tokens, kept hashed.

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

fn token_row(r: &rusqlite::Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord { id: r.get(0)?, role: r.get(1)?, tenant: r.get(2)?, name: r.get(3)?, created_at: r.get(4)?, revoked_at: r.get(5)? })
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
}
