//! Normalization: a collected [`Event`] → the [`SecurityEvent`] model, with the normalization of
//! the event's vendor (see [`crate::vendors`]) and the source's VRL `mapping` on top. Encoders
//! call it when a format needs the model. Pure functions, no I/O.

pub mod mapping;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::event::Event;
use crate::model::{Analyzer, Endpoint, Kind, Level, NormalizeError, SecurityEvent, Severity};
use crate::vendors;

/// Normalizes with the vendor's decoder; when that fails, with the generic one, the reason kept
/// in `description`. Encoders use this, so input a decoder does not understand still reaches the
/// sink, with its raw JSON, rather than being lost.
pub fn normalize_lossless(event: &Event) -> SecurityEvent {
    normalize_reporting(event).0
}

/// [`normalize_lossless`], also saying why the vendor's decoder failed, when it did.
pub fn normalize_reporting(event: &Event) -> (SecurityEvent, Option<NormalizeError>) {
    match normalize(event) {
        Ok(e) => (e, None),
        Err(err) => {
            let raw: Value = serde_json::from_str(event.raw.get()).unwrap_or(Value::Null);
            let raw = if raw.is_object() { raw } else { serde_json::json!({ "value": raw }) };
            let mut e =
                normalize_value("json", raw, &event.id, &event.tenant, event.received_at).expect("the generic decoder accepts any object");
            e.vendor = event.vendor.to_string();
            e.description = Some(format!("{} decoder: {err}", event.vendor));
            (e, Some(err))
        }
    }
}

/// Normalizes a collected event with the decoder of its vendor.
pub fn normalize(event: &Event) -> Result<SecurityEvent, NormalizeError> {
    let raw: Value = serde_json::from_str(event.raw.get()).map_err(|e| NormalizeError::new("$", e.to_string()))?;
    let mut e = normalize_value(&event.vendor, raw, &event.id, &event.tenant, event.received_at)?;
    if let Some(mapped) = event.mapped.as_ref().and_then(|m| serde_json::from_str::<Value>(m.get()).ok()) {
        mapping::apply_overrides(&mapped, &mut e);
        e.risk_score = e.severity.level.risk_score();
    }
    Ok(e)
}

pub fn normalize_value(
    vendor: &str,
    raw: Value,
    id: &str,
    tenant: &str,
    received_at: DateTime<Utc>,
) -> Result<SecurityEvent, NormalizeError> {
    if !raw.is_object() {
        return Err(NormalizeError::new("$", "expected a JSON object"));
    }
    let mut e = SecurityEvent {
        id: id.to_string(),
        tenant: tenant.to_string(),
        time: received_at,
        kind: Kind::SecurityEvent,
        severity: Severity { level: Level::Info, original: String::new() },
        risk_score: 0,
        category: "Other.Uncategorised",
        title: String::new(),
        description: None,
        action: None,
        source: Endpoint::default(),
        target: Endpoint::default(),
        files: Vec::new(),
        rule: None,
        mitre: Vec::new(),
        vendor: vendor.to_string(),
        product: vendor.to_string(),
        analyzer: Analyzer {
            name: vendor.to_string(),
            model: vendor.to_string(),
            category: "Undetermined",
            data: "Log",
            method: "Monitor",
            hostname: None,
            ip: None,
        },
        raw: Value::Null,
    };
    // An event of a vendor sluice does not know (an ingested `vendor` name) gets the generic reading.
    let normalize = vendors::find(vendor).map_or(vendors::json_normalize as fn(&Value, &mut SecurityEvent) -> _, |v| v.normalize);
    normalize(&raw, &mut e)?;
    if e.title.is_empty() {
        e.title = format!("{} event", e.product);
    }
    e.risk_score = e.severity.level.risk_score();
    e.raw = raw;
    Ok(e)
}

#[cfg(test)]
mod tests;
