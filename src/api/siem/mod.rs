//! The original SIEM integration module's API, same paths and payloads: connections (each a live sink,
//! persisted in the store, surviving restarts), test, export, pending and failed events,
//! statistics and health.

pub mod connection;

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::config::Config;
use crate::event::Event;
use crate::store::ApiSink;
use connection::Connection;

/// Adds the enabled API connections to a config read from the file: each becomes a sink, routed
/// for its tenant. A connection whose tenant is gone from the file is left out (and logged).
pub fn merge(mut config: Config, sinks: &[ApiSink]) -> Config {
    for sink in sinks {
        let Ok(conn) = serde_json::from_value::<Connection>(sink.definition.clone()) else {
            tracing::warn!(connection = %sink.id, "stored SIEM connection is unreadable; left out");
            continue;
        };
        if !conn.enabled {
            continue;
        }
        let Some(tenant) = config.tenants.iter_mut().find(|t| t.name == sink.tenant) else {
            tracing::warn!(connection = %sink.id, tenant = %sink.tenant, "the connection's tenant is not configured; left out");
            continue;
        };
        match conn.to_sink(&sink.id) {
            Ok(sink_config) => {
                if !tenant.sinks.contains(&sink.id) {
                    tenant.sinks.push(sink.id.clone());
                }
                config.sinks.insert(sink.id.clone(), sink_config);
            }
            Err(errors) => tracing::warn!(connection = %sink.id, errors = ?errors, "stored SIEM connection is invalid; left out"),
        }
    }
    config
}

/// Asks the main loop to apply the file config plus the API connections, and waits for it.
async fn reconfigure(state: &AppState) -> Result<(), ApiError> {
    let Some(tx) = &state.reconfigure else {
        return Err(ApiError::unavailable("connections cannot change in this process"));
    };
    let (reply, done) = tokio::sync::oneshot::channel();
    tx.send(reply).await.map_err(|_| ApiError::unavailable("sluice is shutting down"))?;
    match done.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ApiError::bad_request(format!("the connection cannot run: {e:#}"))),
        Err(_) => Err(ApiError::unavailable("sluice is shutting down")),
    }
}

fn parse_errors(errors: Vec<crate::settings::ConfigError>) -> ApiError {
    ApiError::bad_request(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

/// The stored connection `id`, if the caller may see it.
async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<ApiSink, ApiError> {
    let sinks = state.view.store.api_sinks().await.map_err(ApiError::internal)?;
    sinks
        .into_iter()
        .find(|s| s.id == id && caller.tenant.as_ref().is_none_or(|t| *t == s.tenant))
        .ok_or_else(|| ApiError::not_found(format!("no connection `{id}`")))
}

fn connection(sink: &ApiSink) -> Result<Connection, ApiError> {
    serde_json::from_value(sink.definition.clone()).map_err(|e| ApiError::internal(anyhow::anyhow!("stored connection {}: {e}", sink.id)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    enabled_only: bool,
}

/// Connections (secrets omitted).
#[utoipa::path(get, path = "/api/v1/siem/connections", tag = "siem", params(ListQuery), responses((status = 200, body = Vec<Object>), (status = 401), (status = 403)))]
pub async fn list(State(state): State<AppState>, caller: Caller, Query(q): Query<ListQuery>) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_read()?;
    let sinks = state.view.store.api_sinks().await.map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for s in sinks.iter().filter(|s| caller.tenant.as_ref().is_none_or(|t| *t == s.tenant)) {
        let conn = connection(s)?;
        if q.enabled_only && !conn.enabled {
            continue;
        }
        let mut v = conn.public(&s.id);
        v["tenant"] = json!(s.tenant);
        v["created_at"] = json!(s.created_at);
        v["updated_at"] = json!(s.updated_at);
        out.push(v);
    }
    Ok(Json(out))
}

/// Creates a connection: a new sink, live once this answers 201.
#[utoipa::path(
    post,
    path = "/api/v1/siem/connections",
    tag = "siem",
    request_body = Connection,
    responses((status = 201, body = Object), (status = 400), (status = 401), (status = 403), (status = 404))
)]
pub async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let mut definition: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let conn: Connection = serde_json::from_value(definition.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let tenant = caller.tenant(conn.tenant.as_deref())?;
    if !state.view.routes.read().expect("routes poisoned").contains_key(&tenant) {
        return Err(ApiError::not_found(format!("tenant `{tenant}` is not configured")));
    }
    let id = format!("SIEM-CONN-{:08X}", rand::rng().random::<u32>());
    conn.to_sink(&id).map_err(parse_errors)?;
    definition["tenant"] = json!(tenant);
    state.view.store.put_api_sink(&id, &tenant, &definition).await.map_err(ApiError::internal)?;
    if let Err(e) = reconfigure(&state).await {
        let _ = state.view.store.delete_api_sink(&id).await;
        return Err(e);
    }
    tracing::info!(connection = %id, %tenant, siem_type = %conn.siem_type, by = %caller.token_id, "SIEM connection created");
    let mut out = conn.public(&id);
    out["tenant"] = json!(tenant);
    Ok((StatusCode::CREATED, Json(out)))
}

/// One connection (secrets omitted) with its statistics.
#[utoipa::path(get, path = "/api/v1/siem/connections/{id}", tag = "siem", params(("id" = String, Path)), responses((status = 200, body = Object), (status = 401), (status = 403), (status = 404)))]
pub async fn get_one(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let sink = find(&state, &caller, &id).await?;
    let mut v = connection(&sink)?.public(&id);
    v["tenant"] = json!(sink.tenant);
    v["statistics"] = statistics_of(&state, &id).await?;
    Ok(Json(v))
}

/// Changes a connection: the fields given replace the stored ones; the sink restarts with them.
#[utoipa::path(put, path = "/api/v1/siem/connections/{id}", tag = "siem", params(("id" = String, Path)), request_body = Object, responses((status = 200, body = Object), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn update(State(state): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let sink = find(&state, &caller, &id).await?;
    let changes: serde_json::Map<String, Value> =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("expected a JSON object: {e}")))?;
    if changes.contains_key("tenant") {
        return Err(ApiError::bad_request("`tenant` cannot change; create a new connection"));
    }
    let mut definition = sink.definition.clone();
    for (k, v) in changes {
        definition[k] = v;
    }
    let conn: Connection = serde_json::from_value(definition.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    conn.to_sink(&id).map_err(parse_errors)?;
    state.view.store.put_api_sink(&id, &sink.tenant, &definition).await.map_err(ApiError::internal)?;
    if let Err(e) = reconfigure(&state).await {
        // Back to what ran before.
        let _ = state.view.store.put_api_sink(&id, &sink.tenant, &sink.definition).await;
        return Err(e);
    }
    let mut v = conn.public(&id);
    v["tenant"] = json!(sink.tenant);
    Ok(Json(v))
}

/// Removes a connection; its sink stops (events still in its outbox stay in the store).
#[utoipa::path(delete, path = "/api/v1/siem/connections/{id}", tag = "siem", params(("id" = String, Path)), responses((status = 204), (status = 401), (status = 403), (status = 404)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    find(&state, &caller, &id).await?;
    state.view.store.delete_api_sink(&id).await.map_err(ApiError::internal)?;
    reconfigure(&state).await?;
    tracing::info!(connection = %id, by = %caller.token_id, "SIEM connection deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the connection's active check, which writes nothing (HEC health, cluster info, a
/// TCP/TLS handshake).
#[utoipa::path(post, path = "/api/v1/siem/connections/{id}/test", tag = "siem", params(("id" = String, Path)), responses((status = 200, body = Object), (status = 401), (status = 403), (status = 404)))]
pub async fn test(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let sink = find(&state, &caller, &id).await?;
    let config = connection(&sink)?.to_sink(&id).map_err(parse_errors)?;
    let mut instance = config
        .settings
        .start(&id, &state.view.store, &config.policy)
        .map_err(|e| ApiError::bad_request(crate::settings::redact_urls(&format!("{e:#}"))))?;
    let result = tokio::time::timeout(std::time::Duration::from_secs(15), instance.check()).await;
    let (success, message) = match result {
        Ok(Ok(())) => (true, "reachable; credentials accepted".to_string()),
        Ok(Err(e)) => (false, crate::settings::redact_urls(&format!("{e:#}"))),
        Err(_) => (false, "no answer within 15 s".to_string()),
    };
    Ok(Json(json!({"connection_id": id, "success": success, "message": message})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    event_type: String,
    event_source: String,
    #[schema(value_type = Object)]
    event_data: Value,
    /// Only these connections (or config sinks) of the tenant; default: all of the tenant's.
    #[serde(default)]
    connections: Option<Vec<String>>,
    #[serde(default)]
    tenant: Option<String>,
}

/// Exports one event now (the original SIEM integration module's immediate export), with the same envelope as every other
/// event; 200 once durable at each connection.
#[utoipa::path(post, path = "/api/v1/siem/export", tag = "siem", request_body = ExportRequest, responses((status = 200, body = Object), (status = 400), (status = 401), (status = 403), (status = 404), (status = 503)))]
pub async fn export(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<Json<Value>, ApiError> {
    caller.require_ingest()?;
    let request: ExportRequest = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let tenant = caller.tenant(request.tenant.as_deref())?;
    crate::names::validate(&request.event_source).map_err(|e| ApiError::bad_request(format!("event_source: {e}")))?;
    let routes = state.view.routes.read().expect("routes poisoned").get(&tenant).cloned();
    let routes = routes.ok_or_else(|| ApiError::not_found(format!("tenant `{tenant}` is not configured")))?;
    let targets = match request.connections {
        Some(asked) => {
            if let Some(unknown) = asked.iter().find(|c| !routes.contains(c)) {
                return Err(ApiError::not_found(format!("`{unknown}` is not a connection of tenant `{tenant}`")));
            }
            asked
        }
        None => routes,
    };
    let mut data = match request.event_data {
        Value::Object(map) => map,
        _ => return Err(ApiError::bad_request("event_data must be an object")),
    };
    data.entry("event_type").or_insert(json!(request.event_type));
    data.entry("timestamp").or_insert(json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
    let raw = crate::event::compact_raw(&Value::Object(data));
    let event = Event::hashed(tenant.as_str().into(), request.event_source.as_str().into(), "json".into(), chrono::Utc::now(), raw);
    let event_id = event.id.clone();
    let emitter = crate::pipeline::Emitter::new(state.view.sinks.clone(), targets.clone(), state.view.usage.clone());
    let ack = emitter.emit(vec![event]).await.map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
    ack.await.map_err(|e| ApiError::unavailable(format!("not durable: {e:#}")))?;
    let results: BTreeMap<String, bool> = targets.into_iter().map(|t| (t, true)).collect();
    Ok(Json(json!({"message": "Event export initiated", "event_id": event_id, "results": results})))
}

/// The sinks a request is about: for a global token all of them; for a tenant token those only
/// its tenant routes to (a sink shared with other tenants would show their traffic).
fn visible_sinks(state: &AppState, caller: &Caller) -> Vec<String> {
    match &caller.tenant {
        Some(t) => {
            let routes = state.view.routes.read().expect("routes poisoned");
            let own = routes.get(t).cloned().unwrap_or_default();
            own.into_iter().filter(|sink| !routes.iter().any(|(other, sinks)| other != t && sinks.contains(sink))).collect()
        }
        None => state.view.statuses.read().expect("status map poisoned").keys().cloned().collect(),
    }
}

async fn statistics_of(state: &AppState, sink: &str) -> Result<Value, ApiError> {
    let status = state.view.statuses.read().expect("status map poisoned").get(sink).cloned();
    let dead = state.view.store.dead_letter_count(sink).await.map_err(ApiError::internal)?;
    Ok(match status {
        Some(s) => {
            let snap = s.snapshot();
            json!({"health": snap.health, "sent_events": snap.sent, "failed_events": dead, "failed_attempts": snap.failed,
                "pending_events": snap.pending, "success_rate": snap.success_rate, "last_error": snap.last_error,
                "last_success_at": snap.last_success_at})
        }
        None => json!({"health": "unknown", "failed_events": dead}),
    })
}

/// Totals over the caller's connections (the original SIEM integration module's shape). A tenant token counts the sinks
/// only its tenant uses.
#[utoipa::path(get, path = "/api/v1/siem/statistics", tag = "siem", responses((status = 200, body = Object), (status = 401), (status = 403)))]
pub async fn statistics(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let (mut sent, mut failed, mut pending, mut active) = (0u64, 0u64, 0u64, 0u64);
    for sink in visible_sinks(&state, &caller) {
        let status = state.view.statuses.read().expect("status map poisoned").get(&sink).cloned();
        if let Some(s) = status {
            let snap = s.snapshot();
            sent += snap.sent;
            pending += snap.pending;
            active += 1;
        }
        failed += state.view.store.dead_letter_count(&sink).await.map_err(ApiError::internal)?;
    }
    let total = sent + failed + pending;
    let rate = if sent + failed > 0 { sent as f64 / (sent + failed) as f64 * 100.0 } else { 0.0 };
    Ok(Json(json!({"total_events": total, "sent_events": sent, "failed_events": failed, "pending_events": pending,
        "success_rate": rate, "active_connections": active})))
}

/// Health of each of the caller's connections (the original SIEM integration module's shape).
#[utoipa::path(get, path = "/api/v1/siem/health", tag = "siem", responses((status = 200, body = Object), (status = 401), (status = 403)))]
pub async fn health(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let types: BTreeMap<String, String> = state
        .view
        .store
        .api_sinks()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|s| (s.id, s.definition["siem_type"].as_str().unwrap_or("").to_string()))
        .collect();
    let mut connections = serde_json::Map::new();
    for sink in visible_sinks(&state, &caller) {
        let stats = statistics_of(&state, &sink).await?;
        let health = stats["health"].as_str().unwrap_or("unknown").to_string();
        connections.insert(
            sink.clone(),
            json!({"healthy": health == "healthy", "status": health, "connection_id": sink,
                "siem_type": types.get(&sink), "statistics": stats}),
        );
    }
    Ok(Json(json!({"timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "connections": connections})))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PendingQuery {
    /// Accepted for compatibility; sluice delivers pending events continuously.
    #[allow(dead_code)]
    limit: Option<u64>,
}

/// Pending events per connection. sluice delivers them continuously (with backoff while a
/// destination is down), so this reports rather than triggers.
#[utoipa::path(post, path = "/api/v1/siem/process-pending", tag = "siem", params(PendingQuery), responses((status = 200, body = Object), (status = 401), (status = 403)))]
pub async fn process_pending(
    State(state): State<AppState>,
    caller: Caller,
    Query(_q): Query<PendingQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let mut pending = serde_json::Map::new();
    for sink in visible_sinks(&state, &caller) {
        let n = state.view.statuses.read().expect("status map poisoned").get(&sink).map(|s| s.snapshot().pending).unwrap_or(0);
        pending.insert(sink, json!(n));
    }
    Ok(Json(json!({"message": "pending events are delivered continuously", "pending": pending})))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetryQuery {
    /// Dead letters younger than this many hours go back to their sink (default 24).
    max_age_hours: Option<u32>,
}

/// Sends dead-lettered events back to their connection's outbox (the original SIEM integration module's retry-failed); they
/// are delivered within the sink's health interval.
#[utoipa::path(post, path = "/api/v1/siem/retry-failed", tag = "siem", params(RetryQuery), responses((status = 200, body = Object), (status = 401), (status = 403)))]
pub async fn retry_failed(State(state): State<AppState>, caller: Caller, Query(q): Query<RetryQuery>) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let hours = q.max_age_hours.unwrap_or(24).min(24 * 365);
    let mut retried = serde_json::Map::new();
    let mut total = 0;
    for sink in visible_sinks(&state, &caller) {
        let n = state.view.store.retry_dead_letters(&sink, chrono::Duration::hours(hours as i64)).await.map_err(ApiError::internal)?;
        total += n;
        retried.insert(sink, json!(n));
    }
    Ok(Json(json!({"message": format!("{total} failed events queued again"), "retried": retried})))
}
