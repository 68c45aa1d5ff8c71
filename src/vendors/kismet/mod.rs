//! Kismet alerts (`/alerts/all_alerts.json` items, flat dotted keys).

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "kismet",
    input: "one alert, or an `all_alerts.json` array",
    severity: "severity ≥15 high, ≥10 medium, ≥5 low",
    normalize,
    split: Some(split),
    text_line: None,
    id_field: None,
};

/// Kismet's keys contain dots (`kismet.alert.header`), so they are read as whole keys.
fn key<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(format!("kismet.alert.{k}")).filter(|x| !x.is_null())
}

fn text(v: &Value, k: &str) -> Option<String> {
    match key(v, k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let header = text(v, "header").ok_or_else(|| NormalizeError::new("kismet.alert.header", "missing"))?;
    e.product = "Kismet".into();
    if let Some(t) = key(v, "timestamp").and_then(Value::as_f64).and_then(epoch) {
        e.time = t;
    }
    let sev = key(v, "severity").and_then(Value::as_i64);
    e.severity = Severity {
        level: match sev {
            Some(s) if s >= 15 => Level::High,
            Some(s) if s >= 10 => Level::Medium,
            Some(s) if s >= 5 => Level::Low,
            _ => Level::Info,
        },
        original: sev.map(|s| s.to_string()).unwrap_or_default(),
    };
    e.kind = Kind::Alert;
    e.category = "Recon.Network";
    e.title = header.clone();
    e.description = text(v, "text");
    e.rule = Some(Rule { id: text(v, "hash"), name: Some(header), groups: text(v, "class").into_iter().collect() });
    e.source = Endpoint { mac: text(v, "source_mac"), ..Endpoint::default() };
    e.target = Endpoint { mac: text(v, "dest_mac"), ..Endpoint::default() };
    e.analyzer = Analyzer {
        name: "kismet".into(),
        model: "Kismet Wireless IDS".into(),
        category: "NET.WIDS",
        data: "Network",
        method: "Monitor",
        hostname: None,
        ip: None,
    };
    Ok(())
}

/// `all_alerts.json` is an array of alerts; anything else is one.
pub fn split(doc: Value) -> Vec<Value> {
    match doc {
        Value::Array(items) => items,
        other => vec![other],
    }
}
