//! Bearer tokens: `sluice_<id>_<secret>`, stored as their SHA-256. A token has a role and may be
//! bound to one tenant; every handler asks the [`Caller`] what it may see.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including tokens.
    Admin,
    /// Read-only: statistics, alerts, inventory, usage.
    Reader,
    /// Only sends events (`/api/v1/ingest`, `/wazuh-alert`).
    Ingest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reader => "reader",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "reader" => Some(Role::Reader),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }
}

/// A new token: the text to hand out (shown once) and what the store keeps.
pub struct NewToken {
    pub id: String,
    pub token: String,
    pub hash: String,
}

pub fn generate() -> NewToken {
    let mut rng = rand::rng();
    let id = format!("{:08x}", rng.random::<u32>());
    let secret: [u8; 32] = rng.random();
    let token = format!("sluice_{id}_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&token);
    NewToken { id, token, hash }
}

pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates and stores a token; returns it (the only time its text is known).
pub async fn create(store: &Store, role: Role, tenant: Option<&str>, name: &str) -> anyhow::Result<(String, NewToken)> {
    let new = generate();
    store.create_token(&new.id, &new.hash, role.as_str(), tenant, name).await?;
    Ok((new.token.clone(), new))
}

/// Who is calling: an authenticated token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
    pub tenant: Option<String>,
}

impl Caller {
    /// Admins and readers may read.
    pub fn require_read(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin | Role::Reader => Ok(()),
            Role::Ingest => Err(ApiError::forbidden("an ingest token can only send events")),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            _ => Err(ApiError::forbidden("this needs an admin token")),
        }
    }

    pub fn require_ingest(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin | Role::Ingest => Ok(()),
            Role::Reader => Err(ApiError::forbidden("a reader token cannot send events")),
        }
    }

    /// Data across tenants (sink statistics, metrics) is for tokens not bound to a tenant.
    pub fn require_global(&self) -> Result<(), ApiError> {
        match &self.tenant {
            None => Ok(()),
            Some(_) => Err(ApiError::forbidden("a tenant token sees only its tenant's data")),
        }
    }

    /// The tenant a request is about: the token's, or for a global token the one asked for.
    pub fn tenant(&self, asked: Option<&str>) -> Result<String, ApiError> {
        match (&self.tenant, asked) {
            (Some(own), None) => Ok(own.clone()),
            (Some(own), Some(asked)) if asked == own => Ok(own.clone()),
            // Another tenant's data does not exist for this token.
            (Some(_), Some(_)) => Err(ApiError::not_found("no such tenant")),
            (None, Some(asked)) => Ok(asked.to_string()),
            (None, None) => Err(ApiError::bad_request("`tenant` is required with a token that is not bound to a tenant")),
        }
    }
}

/// Failed authentications per client address in the current minute.
#[derive(Default)]
pub struct FailedLogins {
    by_ip: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

const FAILURES_PER_MINUTE: u32 = 30;

impl FailedLogins {
    fn blocked(&self, ip: IpAddr) -> bool {
        let by_ip = self.by_ip.lock().expect("failed logins poisoned");
        by_ip.get(&ip).is_some_and(|(since, n)| since.elapsed() < Duration::from_secs(60) && *n >= FAILURES_PER_MINUTE)
    }

    fn failed(&self, ip: IpAddr) {
        let mut by_ip = self.by_ip.lock().expect("failed logins poisoned");
        if by_ip.len() > 10_000 {
            by_ip.retain(|_, (since, _)| since.elapsed() < Duration::from_secs(60));
        }
        let entry = by_ip.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= Duration::from_secs(60) {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<super::PeerAddr>>()
            .map(|c| c.0.0.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if state.failed_logins.blocked(ip) {
            return Err(ApiError::too_many("too many failed authentications; wait a minute"));
        }
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim) else {
            return Err(ApiError::unauthorized("missing `Authorization: Bearer <token>`"));
        };
        let record = state.view.store.token_by_hash(&hash(token)).await.map_err(ApiError::internal)?;
        let Some(record) = record else {
            state.failed_logins.failed(ip);
            // The token's id part names it without revealing it.
            let id = token.strip_prefix("sluice_").and_then(|t| t.split('_').next()).unwrap_or("?");
            tracing::warn!(%ip, token_id = id, "API authentication failed");
            return Err(ApiError::unauthorized("invalid or revoked token"));
        };
        let role =
            Role::parse(&record.role).ok_or_else(|| ApiError::internal(anyhow::anyhow!("token {} has role {}", record.id, record.role)))?;
        if let Some(tenant) = &record.tenant {
            state.view.usage.api_call(tenant);
        }
        Ok(Caller { token_id: record.id, role, tenant: record.tenant })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_only_their_hash_is_kept() {
        let a = generate();
        let b = generate();
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with(&format!("sluice_{}_", a.id)));
        assert_eq!(a.hash, hash(&a.token));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.token));
    }

    #[test]
    fn a_tenant_token_cannot_name_another_tenant() {
        let bound = Caller { token_id: "x".into(), role: Role::Reader, tenant: Some("acme".into()) };
        assert_eq!(bound.tenant(None).unwrap(), "acme");
        assert_eq!(bound.tenant(Some("acme")).unwrap(), "acme");
        assert_eq!(bound.tenant(Some("globex")).unwrap_err().status, axum::http::StatusCode::NOT_FOUND);
        let global = Caller { tenant: None, ..bound };
        assert_eq!(global.tenant(Some("globex")).unwrap(), "globex");
        assert!(global.tenant(None).is_err());
    }
}
