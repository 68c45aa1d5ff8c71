//! Health, metrics, sink statistics, alerts, usage and tokens.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{self, Caller, Role};
use super::{ApiError, AppState};
use crate::sinks::status::Health;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `healthy` when every sink is healthy or not yet tried, `degraded` when one is degraded,
    /// `failed` when one failed.
    status: String,
    sinks: BTreeMap<String, String>,
}

/// Liveness and sink health; needs no token.
#[utoipa::path(get, path = "/health", tag = "operations", security(()), responses((status = 200, body = HealthReport)))]
pub async fn health(State(state): State<AppState>) -> Json<HealthReport> {
    let statuses = state.view.statuses.read().expect("status map poisoned").clone();
    let mut worst = Health::Healthy;
    let mut sinks = BTreeMap::new();
    for (name, status) in statuses {
        let health = status.snapshot().health;
        worst = match (worst, health) {
            (_, Health::Failed) | (Health::Failed, _) => Health::Failed,
            (_, Health::Degraded) | (Health::Degraded, _) => Health::Degraded,
            _ => Health::Healthy,
        };
        sinks.insert(name, health.as_str().to_string());
    }
    Json(HealthReport { status: worst.as_str().to_string(), sinks })
}

/// Prometheus metrics: events in and out per tenant, source and sink, failures, dead letters,
/// outbox depth. For tokens not bound to a tenant.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain"), (status = 401), (status = 403)))]
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_read()?;
    caller.require_global()?;
    let handle = state.metrics.as_ref().ok_or_else(|| ApiError::unavailable("metrics are not recorded in this process"))?;
    let mut text = handle.render();
    // Outbox depth is a gauge read from the sinks' status, not a counter.
    for (name, status) in state.view.statuses.read().expect("status map poisoned").iter() {
        let s = status.snapshot();
        text.push_str(&format!("sluice_sink_outbox_events{{sink=\"{name}\"}} {}\n", s.pending));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Health and statistics of every sink. For tokens not bound to a tenant: sinks are shared.
#[utoipa::path(get, path = "/api/v1/sinks", tag = "operations", responses((status = 200, body = Object), (status = 401), (status = 403)))]
pub async fn sinks(State(state): State<AppState>, caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_read()?;
    caller.require_global()?;
    let statuses = state.view.statuses.read().expect("status map poisoned").clone();
    let map: serde_json::Map<String, serde_json::Value> =
        statuses.into_iter().map(|(name, s)| (name, serde_json::to_value(s.snapshot()).unwrap_or_default())).collect();
    Ok(Json(serde_json::Value::Object(map)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// The tenant, for a token not bound to one.
    tenant: Option<String>,
    /// Only alerts with at least this risk score (0–100).
    risk_score: Option<u8>,
    /// Only this agent's alerts (`001`).
    agent_id: Option<String>,
    /// Only alerts at or after this time (RFC 3339).
    since: Option<String>,
    /// Only alerts before this time (RFC 3339).
    until: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
    /// The `next` value of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    #[schema(value_type = Vec<Object>)]
    alerts: Vec<crate::store::StoredAlert>,
    /// Pass as `cursor` for the next page; absent on the last.
    next: Option<String>,
}

/// Wazuh alerts received on the webhook, newest first (the original Wazuh-to-MongoDB service's `/api/alerts`, with paging
/// beyond its limit and time ranges).
#[utoipa::path(get, path = "/api/alerts", tag = "wazuh", params(AlertQuery), responses((status = 200, body = AlertPage), (status = 400), (status = 401), (status = 403)))]
pub async fn alerts(State(state): State<AppState>, caller: Caller, Query(q): Query<AlertQuery>) -> Result<Json<AlertPage>, ApiError> {
    caller.require_read()?;
    let tenant = caller.tenant(q.tenant.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    for (name, value) in [("since", &q.since), ("until", &q.until)] {
        if let Some(v) = value {
            chrono::DateTime::parse_from_rfc3339(v).map_err(|e| ApiError::bad_request(format!("`{name}` is not RFC 3339: {e}")))?;
        }
    }
    let normalize = |v: &Option<String>| {
        v.as_ref().map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("checked")
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
    };
    let before = match &q.cursor {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::bad_request("invalid cursor"))?),
        None => None,
    };
    let alerts = state
        .view
        .store
        .wazuh_alerts(
            &tenant,
            q.agent_id.as_deref(),
            q.risk_score,
            normalize(&q.since).as_deref(),
            normalize(&q.until).as_deref(),
            before,
            limit,
        )
        .await
        .map_err(ApiError::internal)?;
    let next = (alerts.len() == limit).then(|| alerts.last().map(|a| encode_cursor(&a.time, &a.alert_id))).flatten();
    Ok(Json(AlertPage { alerts, next }))
}

fn encode_cursor(time: &str, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{time}\n{id}"))
}

fn decode_cursor(cursor: &str) -> Option<(String, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (time, id) = text.split_once('\n')?;
    Some((time.to_string(), id.to_string()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// First day (YYYY-MM-DD, UTC), inclusive.
    from: Option<String>,
    /// Last day, inclusive.
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Usage of a tenant per day: events and bytes taken in, API requests by its tokens. The base
/// for MSSP billing; `format=csv` for a spreadsheet.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/usage",
    tag = "operations",
    params(("tenant" = String, Path), UsageQuery),
    responses((status = 200, body = Vec<Object>), (status = 400), (status = 401), (status = 403), (status = 404))
)]
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(q): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let tenant = caller.tenant(Some(&tenant))?;
    for (name, value) in [("from", &q.from), ("to", &q.to)] {
        if let Some(v) = value {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|e| ApiError::bad_request(format!("`{name}` is not YYYY-MM-DD: {e}")))?;
        }
    }
    state.view.usage.flush(&state.view.store).await;
    let rows = state.view.store.usage(&tenant, q.from.as_deref(), q.to.as_deref()).await.map_err(ApiError::internal)?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(rows).into_response()),
        Some("csv") => {
            let mut csv = String::from("tenant,day,events,bytes,api_calls\n");
            for r in rows {
                csv.push_str(&format!("{tenant},{},{},{},{}\n", r.day, r.events, r.bytes, r.api_calls));
            }
            let disposition = format!("attachment; filename=\"{tenant}-usage.csv\"");
            Ok(([(header::CONTENT_TYPE, "text/csv".to_string()), (header::CONTENT_DISPOSITION, disposition)], csv).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!("format `{other}`: use json or csv"))),
    }
}

/// Tokens (never their secret): all of them, or a tenant admin's tenant's.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", responses((status = 200, body = Vec<Object>), (status = 401), (status = 403)))]
pub async fn tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<crate::store::TokenRecord>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(state.view.store.tokens(caller.tenant.as_deref()).await.map_err(ApiError::internal)?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    role: Role,
    /// Bind the token to this tenant. A tenant admin can only create tokens of its tenant.
    tenant: Option<String>,
    /// What the token is for.
    name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    id: String,
    /// The token itself: shown only now.
    token: String,
    role: Role,
    tenant: Option<String>,
}

/// Creates a token. The answer holds the token; it cannot be read again.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = NewTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 400), (status = 401), (status = 403), (status = 422))
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<(axum::http::StatusCode, Json<CreatedToken>), ApiError> {
    caller.require_admin()?;
    let request: NewTokenRequest = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let tenant = match (&caller.tenant, request.tenant) {
        (Some(own), None) => Some(own.clone()),
        (Some(own), Some(asked)) if asked == *own => Some(asked),
        (Some(_), Some(_)) => return Err(ApiError::forbidden("a tenant admin creates tokens of its own tenant only")),
        (None, asked) => asked,
    };
    if let Some(t) = &tenant {
        crate::names::validate(t).map_err(|e| ApiError::bad_request(format!("tenant: {e}")))?;
    }
    let (token, new) = auth::create(&state.view.store, request.role, tenant.as_deref(), request.name.as_deref().unwrap_or(""))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(token_id = %new.id, role = request.role.as_str(), tenant = tenant.as_deref().unwrap_or("*"), by = %caller.token_id, "API token created");
    Ok((axum::http::StatusCode::CREATED, Json(CreatedToken { id: new.id, token, role: request.role, tenant })))
}

/// Revokes a token at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    caller.require_admin()?;
    if state.view.store.revoke_token(&id, caller.tenant.as_deref()).await.map_err(ApiError::internal)? {
        tracing::info!(token_id = %id, by = %caller.token_id, "API token revoked");
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such live token"))
    }
}
