//! Events in over HTTP. Both endpoints answer 200 only once the events are durable: at every
//! sink the tenant routes to, or in those sinks' outboxes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::{ApiError, AppState};
use crate::decode::{Decoder, Origin};
use crate::event::Event;
use crate::store::AlertInsert;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestQuery {
    /// The tenant, for a token not bound to one.
    tenant: Option<String>,
    /// How to read the events: `json` (default), `suricata`, `wazuh`, `withsecure`, …
    decoder: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResult {
    /// Events now durable.
    accepted: usize,
}

/// Takes a JSON object, a JSON array of objects, or NDJSON (one object per line) for a tenant's
/// sinks. The batch is accepted or refused whole: any line that cannot be read refuses it, with
/// the line's number.
#[utoipa::path(
    post,
    path = "/api/v1/ingest/{source}",
    tag = "events",
    params(("source" = String, Path, description = "The producer's name, recorded as the events' source"), IngestQuery),
    request_body(
        description = "A JSON object, an array of objects, or NDJSON (one object per line)",
        content((Object = "application/json"), (String = "application/x-ndjson"))
    ),
    responses(
        (status = 200, description = "Every event is durable", body = IngestResult),
        (status = 400, description = "Unreadable input; nothing was taken"),
        (status = 401, description = "No valid token"),
        (status = 403, description = "The token may not send events"),
        (status = 404, description = "The tenant is not configured"),
        (status = 413, description = "Body too large"),
        (status = 503, description = "The events could not be made durable; send them again"),
    )
)]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    Path(source): Path<String>,
    Query(query): Query<IngestQuery>,
    body: Bytes,
) -> Result<Json<IngestResult>, ApiError> {
    caller.require_ingest()?;
    let tenant = caller.tenant(query.tenant.as_deref())?;
    crate::names::validate(&source).map_err(|e| ApiError::bad_request(format!("source name: {e}")))?;
    let decoder_name = query.decoder.as_deref().unwrap_or("json");
    let decoder = Decoder::parse(decoder_name)
        .ok_or_else(|| ApiError::bad_request(format!("unknown decoder `{decoder_name}`; known: {}", crate::vendors::names())))?;
    let emitter = state.view.emitter(&tenant).ok_or_else(|| ApiError::not_found(format!("tenant `{tenant}` is not configured")))?;
    let text = std::str::from_utf8(&body).map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
    let origin = Origin { tenant: tenant.as_str().into(), source: source.as_str().into(), vendor: decoder_name.into() };
    let now = chrono::Utc::now();
    let mut events = Vec::new();
    for (n, line) in lines(text)?.into_iter().enumerate() {
        let decoded = decoder.decode_line(line.trim(), &origin, now).map_err(|e| ApiError::bad_request(format!("event {}: {e}", n + 1)))?;
        events.extend(decoded);
    }
    if events.is_empty() {
        return Err(ApiError::bad_request("no events in the body"));
    }
    let accepted = events.len();
    durable(&emitter, events).await?;
    Ok(Json(IngestResult { accepted }))
}

/// The events of a body: the elements of a top-level array, else the non-blank lines.
fn lines(text: &str) -> Result<Vec<std::borrow::Cow<'_, str>>, ApiError> {
    if text.trim_start().starts_with('[') {
        let items: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("invalid JSON array: {e}")))?;
        return Ok(items.into_iter().map(|i| std::borrow::Cow::Owned(i.get().to_string())).collect());
    }
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(std::borrow::Cow::Borrowed).collect())
}

/// Hands events to the tenant's sinks and waits until they hold them durably.
async fn durable(emitter: &crate::pipeline::Emitter, events: Vec<Event>) -> Result<(), ApiError> {
    let ack = emitter.emit(events).await.map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
    ack.await.map_err(|e| ApiError::unavailable(format!("not durable: {e:#}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WazuhQuery {
    /// The tenant, for a token not bound to one.
    tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WazuhResult {
    alert_id: String,
    agent_id: String,
    risk_score: u8,
    /// The level of `risk_score`: `info`, `low`, `medium`, `high` or `critical`.
    risk_level: &'static str,
    category: String,
    /// The alert had been received (and routed) before; nothing was done again.
    duplicate: bool,
}

/// Receives one alert as Wazuh's integrator hands it to `custom-sluice` (the alert object, or
/// the Shuffle-style wrapper with the alert under `all_fields`). Enriches it (risk score,
/// category, processing time, 3-digit agent id), stores it once per Wazuh alert id, and routes it
/// to the tenant's sinks.
#[utoipa::path(
    post,
    path = "/wazuh-alert",
    tag = "events",
    params(WazuhQuery),
    request_body(content = Object, content_type = "application/json", description = "A Wazuh alert (alerts.json object)"),
    responses(
        (status = 200, description = "Stored and routed (or a duplicate)", body = WazuhResult),
        (status = 400, description = "Not a Wazuh alert"),
        (status = 401, description = "No valid token"),
        (status = 403, description = "The token may not send events"),
        (status = 404, description = "The tenant is not configured"),
        (status = 503, description = "Not durable yet; send it again"),
    )
)]
pub async fn wazuh_alert(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<WazuhQuery>,
    body: Bytes,
) -> Result<Json<WazuhResult>, ApiError> {
    caller.require_ingest()?;
    let tenant = caller.tenant(query.tenant.as_deref())?;
    let emitter = state.view.emitter(&tenant).ok_or_else(|| ApiError::not_found(format!("tenant `{tenant}` is not configured")))?;
    let mut body: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let mut alert = match body.get_mut("all_fields") {
        Some(inner) if inner.is_object() => inner.take(),
        _ => body,
    };
    let Some(alert_id) = alert.get("id").and_then(Value::as_str).map(str::to_string) else {
        return Err(ApiError::bad_request("not a Wazuh alert: `id` (a string) is missing"));
    };
    if !alert.get("rule").is_some_and(Value::is_object) {
        return Err(ApiError::bad_request("not a Wazuh alert: `rule` (an object) is missing"));
    }
    let agent_id = agent_id(alert.pointer("/agent/id"));
    let raw = crate::event::compact_raw(&alert);
    let received = chrono::Utc::now();
    let event = Event::hashed(tenant.as_str().into(), "wazuh-webhook".into(), "wazuh".into(), received, raw);
    let model = crate::normalize::normalize_lossless(&event);
    let rule_id = alert.pointer("/rule/id").and_then(Value::as_str).map(str::to_string);
    let rule_level = alert.pointer("/rule/level").and_then(Value::as_i64);
    let time = model.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let Some(map) = alert.as_object_mut() {
        map.insert(
            "sluice".into(),
            serde_json::json!({
                "risk_score": model.risk_score,
                "category": model.category,
                "severity": model.severity.level,
                "agent_id": agent_id,
                "processed_at": received.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "tenant": tenant,
            }),
        );
    }
    let inserted = state
        .view
        .store
        .insert_wazuh_alert(
            &tenant,
            &alert_id,
            &agent_id,
            rule_id.as_deref(),
            rule_level,
            model.risk_score,
            model.category,
            &time,
            &alert.to_string(),
        )
        .await
        .map_err(ApiError::internal)?;
    let duplicate = inserted == AlertInsert::Duplicate;
    if !duplicate {
        durable(&emitter, vec![event]).await?;
        state.view.store.mark_wazuh_alert_routed(&tenant, &alert_id).await.map_err(ApiError::internal)?;
    }
    let risk_level = super::read::level_word(super::read::level_of(i64::from(model.risk_score)));
    Ok(Json(WazuhResult { alert_id, agent_id, risk_score: model.risk_score, risk_level, category: model.category.to_string(), duplicate }))
}

/// Wazuh agent ids are 3-digit strings (`"001"`); integrations sometimes send `1` or `"1"`.
fn agent_id(value: Option<&Value>) -> String {
    let raw = match value {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return "000".into(),
    };
    match raw.parse::<u64>() {
        Ok(n) => format!("{n:03}"),
        Err(_) => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_normalized_to_three_digits() {
        assert_eq!(agent_id(Some(&serde_json::json!("1"))), "001");
        assert_eq!(agent_id(Some(&serde_json::json!(12))), "012");
        assert_eq!(agent_id(Some(&serde_json::json!("1234"))), "1234");
        assert_eq!(agent_id(Some(&serde_json::json!("web-01"))), "web-01");
        assert_eq!(agent_id(None), "000");
    }

    #[test]
    fn bodies_are_arrays_or_lines() {
        assert_eq!(lines("[{\"a\":1}, {\"b\":2}]").unwrap(), ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(lines("{\"a\":1}\n\n{\"b\":2}\n").unwrap(), ["{\"a\":1}", "{\"b\":2}"]);
        assert!(lines("[{\"a\":1},").is_err());
    }
}
