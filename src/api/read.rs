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
use crate::model::Level;
use crate::sinks::status::Health;

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `healthy` when every sink is healthy or not yet tried, `degraded` when one is degraded,
    /// `failed` when one failed.
    status: String,
    sinks: BTreeMap<String, String>,
    /// Why the store cannot take events right now (its disk is full): intake waits, and the
    /// status is `failed` until there is room again.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
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
    let store = state.view.store.no_space().map(|reason| format!("cannot store events: {reason}"));
    if store.is_some() {
        worst = Health::Failed;
    }
    Json(HealthReport { status: worst.as_str().to_string(), sinks, store })
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
    /// Only alerts with at least this risk score (0–100), or of exactly this level (`info`,
    /// `low`, `medium`, `high`, `critical`).
    #[param(value_type = Option<String>)]
    risk_score: Option<RiskFilter>,
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
    alerts: Vec<AlertOut>,
    /// Pass as `cursor` for the next page; absent on the last.
    next: Option<String>,
}

/// A stored webhook alert as answered: its risk score with the level's word beside it.
#[derive(Debug, Serialize)]
pub struct AlertOut {
    alert_id: String,
    agent_id: String,
    risk_score: i64,
    /// `info`, `low`, `medium`, `high` or `critical`: the level of `risk_score`.
    risk_level: &'static str,
    time: String,
    alert: serde_json::Value,
}

impl From<crate::store::StoredAlert> for AlertOut {
    fn from(a: crate::store::StoredAlert) -> Self {
        AlertOut {
            risk_level: level_word(level_of(a.risk_score)),
            alert_id: a.alert_id,
            agent_id: a.agent_id,
            risk_score: a.risk_score,
            time: a.time,
            alert: a.alert,
        }
    }
}

const LEVELS: [Level; 5] = [Level::Info, Level::Low, Level::Medium, Level::High, Level::Critical];

/// The level whose risk score band holds `score`: from its own score up to the next level's.
pub(super) fn level_of(score: i64) -> Level {
    LEVELS.into_iter().rev().find(|l| score >= i64::from(l.risk_score())).unwrap_or(Level::Info)
}

pub(super) fn level_word(level: Level) -> &'static str {
    match level {
        Level::Info => "info",
        Level::Low => "low",
        Level::Medium => "medium",
        Level::High => "high",
        Level::Critical => "critical",
    }
}

/// `risk_score=`: a number is a minimum, as before; a level's word (the words the original
/// Wazuh service stored and its users filter by) is that level exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RiskFilter {
    AtLeast(u8),
    Level(Level),
}

impl RiskFilter {
    /// Risk scores from (inclusive) and up to (exclusive, `None`: no end).
    fn band(self) -> (u8, Option<i64>) {
        match self {
            RiskFilter::AtLeast(n) => (n, None),
            RiskFilter::Level(level) => {
                let next = LEVELS.into_iter().find(|l| *l > level).map(|l| i64::from(l.risk_score()));
                // The lowest band holds every score below the next level's.
                let from = if level == LEVELS[0] { 0 } else { level.risk_score() };
                (from, next)
            }
        }
    }
}

impl std::str::FromStr for RiskFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(level) = LEVELS.into_iter().find(|l| level_word(*l).eq_ignore_ascii_case(s)) {
            return Ok(RiskFilter::Level(level));
        }
        match s.parse::<u8>() {
            Ok(n) if n <= 100 => Ok(RiskFilter::AtLeast(n)),
            _ => Err(format!("`risk_score` is `{s}`: use a number 0–100 (at least) or info, low, medium, high, critical (exactly)")),
        }
    }
}

impl<'de> Deserialize<'de> for RiskFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A filter for [`crate::store::Store::wazuh_alerts`].
pub struct AlertFilter<'a> {
    pub tenant: &'a str,
    pub agent_id: Option<&'a str>,
    pub risk: Option<RiskFilter>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
}

/// Up to `limit` alerts, newest first, from `before` on; with the cursor of the next page when
/// there may be more.
pub async fn find_alerts(
    state: &AppState,
    filter: &AlertFilter<'_>,
    before: Option<(String, String)>,
    limit: usize,
) -> Result<(Vec<AlertOut>, Option<(String, String)>), ApiError> {
    let (min, below) = filter.risk.map(RiskFilter::band).unzip();
    let rows = state
        .view
        .store
        .wazuh_alerts(filter.tenant, filter.agent_id, (min.filter(|m| *m > 0), below.flatten()), filter.since, filter.until, before, limit)
        .await
        .map_err(ApiError::internal)?;
    let next = (rows.len() == limit).then(|| rows.last().map(|r| (r.time.clone(), r.alert_id.clone()))).flatten();
    Ok((rows.into_iter().map(AlertOut::from).collect(), next))
}

/// Wazuh alerts received on the webhook, newest first (the original Wazuh-to-MongoDB service's `/api/alerts`, with paging
/// beyond its limit and time ranges). `risk_score` is a minimum score or a level's word; each
/// alert has its level's word as `risk_level` beside `risk_score`.
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
    let (since, until) = (normalize(&q.since), normalize(&q.until));
    let filter = AlertFilter {
        tenant: &tenant,
        agent_id: q.agent_id.as_deref(),
        risk: q.risk_score,
        since: since.as_deref(),
        until: until.as_deref(),
    };
    let (alerts, next) = find_alerts(&state, &filter, before, limit).await?;
    Ok(Json(AlertPage { alerts, next: next.map(|(time, id)| encode_cursor(&time, &id)) }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_filters_are_numbers_or_level_words() {
        assert_eq!("critical".parse(), Ok(RiskFilter::Level(Level::Critical)));
        assert_eq!("High".parse(), Ok(RiskFilter::Level(Level::High)));
        assert_eq!("90".parse(), Ok(RiskFilter::AtLeast(90)));
        assert!("101".parse::<RiskFilter>().is_err());
        assert!("severe".parse::<RiskFilter>().is_err());
        assert_eq!(RiskFilter::Level(Level::High).band(), (75, Some(95)));
        assert_eq!(RiskFilter::Level(Level::Critical).band(), (95, None));
        assert_eq!(RiskFilter::Level(Level::Info).band(), (0, Some(25)));
        assert_eq!(RiskFilter::AtLeast(50).band(), (50, None));
    }

    #[test]
    fn scores_have_the_word_of_their_level() {
        for level in LEVELS {
            assert_eq!(level_of(i64::from(level.risk_score())), level);
        }
        assert_eq!(level_word(level_of(0)), "info");
        assert_eq!(level_word(level_of(74)), "medium");
        assert_eq!(level_word(level_of(100)), "critical");
    }
}
