//! Microsoft Entra ID's client-credentials token endpoints as the Microsoft emulators (M365
//! Management Activity, Graph) serve them on their own host: `POST /{tenant}/oauth2/v2.0/token`
//! (`scope=<resource>/.default`, numbers as numbers) and the v1 `POST /{tenant}/oauth2/token`
//! (`resource=<resource>`, numbers as strings, plus `expires_on`, `not_before`, `resource`). The
//! secret comes in the form or as HTTP Basic. Failures answer Entra's OAuth error body
//! (`error`, `error_description` starting with the AADSTS code, `error_codes`, `trace_id`, …).
//!
//! Tokens are JWT-shaped (the payload names `aud`, `tid`, `appid`, `roles`, `exp`) but only
//! looked up, never verified; they expire by the emulator's clock or all at once.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::vendor::{Reply, Request};

struct App {
    secret: String,
}

pub(crate) struct Token {
    pub client_id: String,
    pub tenant: String,
    expires: DateTime<Utc>,
    generation: u64,
}

/// Why a bearer token was refused.
pub(crate) enum Refusal {
    Missing,
    Unknown,
    Expired,
}

pub(crate) struct Entra {
    /// `https://manage.office.com`, `https://graph.microsoft.com`.
    resource: &'static str,
    /// The application role a token carries (`ActivityFeed.Read`, `SecurityAlert.Read.All`).
    role: &'static str,
    pub ttl: Duration,
    /// By (tenant, client id): an app registered in several tenants has a secret in each.
    apps: HashMap<(String, String), App>,
    tokens: HashMap<String, Token>,
    generation: u64,
}

/// `(tenant, v2)` if `path` is a token endpoint.
pub(crate) fn token_path(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix('/')?;
    if let Some(tenant) = rest.strip_suffix("/oauth2/v2.0/token") {
        return Some((tenant, true)).filter(|(t, _)| !t.is_empty() && !t.contains('/'));
    }
    let tenant = rest.strip_suffix("/oauth2/token")?;
    Some((tenant, false)).filter(|(t, _)| !t.is_empty() && !t.contains('/'))
}

/// Entra's OAuth error body.
fn oauth_error(status: u16, error: &str, code: u32, message: &str) -> Reply {
    let now = Utc::now();
    let trace = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    let stamp = now.format("%Y-%m-%d %H:%M:%SZ");
    Reply::json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {stamp}"),
            "error_codes": [code],
            "timestamp": stamp.to_string(),
            "trace_id": trace.to_string(),
            "correlation_id": correlation.to_string(),
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

impl Entra {
    pub fn new(resource: &'static str, role: &'static str, ttl: Duration) -> Entra {
        Entra { resource, role, ttl, apps: HashMap::new(), tokens: HashMap::new(), generation: 0 }
    }

    pub fn add_app(&mut self, tenant: &str, client_id: &str, secret: &str) {
        self.apps.insert((tenant.to_string(), client_id.to_string()), App { secret: secret.to_string() });
    }

    pub fn has_tenant(&self, tenant: &str) -> bool {
        self.apps.keys().any(|(t, _)| t == tenant)
    }

    pub fn expire_all(&mut self) {
        self.generation += 1;
    }

    /// The client id and secret of a token request: form fields, or HTTP Basic for the secret.
    fn client(req: &Request) -> (Option<String>, Option<String>) {
        let form: HashMap<String, String> = form_urlencoded::parse(&req.body).into_owned().collect();
        let basic = req
            .header(AUTHORIZATION.as_str())
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(id, secret)| (id.to_string(), secret.to_string())));
        let id = form.get("client_id").cloned().or_else(|| basic.as_ref().map(|b| b.0.clone()));
        let secret = form.get("client_secret").cloned().or_else(|| basic.map(|b| b.1));
        (id, secret)
    }

    /// Who sent the request: the client id of a token request or of a known bearer token.
    pub fn credential(&self, req: &Request) -> Option<String> {
        if token_path(&req.path).is_some() {
            return Self::client(req).0;
        }
        let token = req.header(AUTHORIZATION.as_str())?.strip_prefix("Bearer ")?.trim();
        self.tokens.get(token).map(|t| t.client_id.clone())
    }

    /// The valid token the request carries.
    pub fn bearer(&self, req: &Request, now: DateTime<Utc>) -> Result<&Token, Refusal> {
        let header = req.header(AUTHORIZATION.as_str()).ok_or(Refusal::Missing)?;
        let token = header.strip_prefix("Bearer ").ok_or(Refusal::Missing)?.trim();
        let token = self.tokens.get(token).ok_or(Refusal::Unknown)?;
        if token.expires <= now || token.generation != self.generation {
            return Err(Refusal::Expired);
        }
        Ok(token)
    }

    /// Answers a token request to `/{tenant}/oauth2[/v2.0]/token`.
    pub fn issue(&mut self, req: &Request, tenant: &str, v2: bool, now: DateTime<Utc>) -> Reply {
        let form: HashMap<String, String> = form_urlencoded::parse(&req.body).into_owned().collect();
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return match form.get("grant_type") {
                None => oauth_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."),
                Some(_) => oauth_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."),
            };
        }
        let (Some(id), secret) = Self::client(req) else {
            return oauth_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.");
        };
        if !self.has_tenant(tenant) {
            return oauth_error(400, "invalid_request", 90002, &format!("Tenant '{tenant}' not found."));
        }
        let Some(app) = self.apps.get(&(tenant.to_string(), id.clone())) else {
            let message = format!("Application with identifier '{id}' was not found in the directory '{tenant}'.");
            return oauth_error(400, "unauthorized_client", 700016, &message);
        };
        let Some(secret) = secret else {
            return oauth_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        };
        if secret != app.secret {
            return oauth_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            );
        }
        if v2 {
            let wanted = format!("{}/.default", self.resource);
            if form.get("scope").is_none_or(|s| !s.split(' ').any(|s| s.trim_end_matches('/') == wanted)) {
                return oauth_error(
                    400,
                    "invalid_scope",
                    1002012,
                    &format!(
                        "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier ({wanted})."
                    ),
                );
            }
        } else if form.get("resource").is_none_or(|r| r.trim_end_matches('/') != self.resource) {
            return oauth_error(
                400,
                "invalid_resource",
                500011,
                "The resource principal named in the request was not found in the tenant.",
            );
        }
        let ttl = self.ttl.as_secs();
        let expires = now + TimeDelta::seconds(ttl as i64);
        let claims = json!({
            "aud": self.resource, "iss": format!("https://sts.windows.net/{tenant}/"), "iat": now.timestamp(), "nbf": now.timestamp(),
            "exp": expires.timestamp(), "appid": id, "tid": tenant, "roles": [self.role], "ver": if v2 { "2.0" } else { "1.0" },
        });
        let token = format!(
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.{}",
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
        );
        self.tokens.insert(token.clone(), Token { client_id: id, tenant: tenant.to_string(), expires, generation: self.generation });
        let body: Value = if v2 {
            json!({"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token})
        } else {
            json!({
                "token_type": "Bearer", "expires_in": ttl.to_string(), "ext_expires_in": ttl.to_string(),
                "expires_on": expires.timestamp().to_string(), "not_before": now.timestamp().to_string(),
                "resource": self.resource, "access_token": token,
            })
        };
        Reply::json(200, &body).header("cache-control", "no-store, no-cache").header("pragma", "no-cache")
    }
}

/// RFC 3339 with seven fraction digits, as Microsoft's services write times.
pub(crate) fn ms_time(t: DateTime<Utc>) -> String {
    let micros = t.to_rfc3339_opts(SecondsFormat::Micros, true);
    format!("{}0Z", micros.trim_end_matches('Z'))
}
