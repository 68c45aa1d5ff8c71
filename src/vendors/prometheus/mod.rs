//! Prometheus alerts: one alert of an Alertmanager webhook payload or of `/api/v1/alerts` (the
//! line decoder splits those documents into their alerts).

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "prometheus",
    input: "one alert, an Alertmanager webhook payload or an `/api/v1/alerts` response (split into alerts)",
    severity: "`labels.severity` words",
    normalize,
    split: Some(split),
    text_line: None,
    id_field: None,
};

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let name = str_at(v, "labels.alertname").ok_or_else(|| NormalizeError::new("labels.alertname", "missing"))?;
    e.product = "Prometheus".into();
    if let Some(fp) = str_at(v, "fingerprint") {
        e.id = fp;
    }
    if let Some(t) = ["activeAt", "startsAt"].iter().find_map(|k| str_at(v, k).and_then(|s| parse_time(&s))) {
        e.time = t;
    }
    let sev = str_at(v, "labels.severity").unwrap_or_default();
    e.severity = Severity { level: level_from_word(&sev).unwrap_or(Level::Medium), original: sev };
    let firing = str_at(v, "state").or_else(|| str_at(v, "status")).is_none_or(|s| s == "firing" || s == "active");
    e.kind = if firing { Kind::Alert } else { Kind::Telemetry };
    let lower = name.to_ascii_lowercase();
    e.category = if lower.contains("down") || lower.contains("unreachable") {
        "Availability.Outage"
    } else if ["cpu", "memory", "disk", "storage", "latency", "slow", "load"].iter().any(|k| lower.contains(k)) {
        "Availability.Failure"
    } else {
        "Other.Uncategorised"
    };
    e.title = str_at(v, "annotations.summary").unwrap_or_else(|| name.clone());
    e.description = str_at(v, "annotations.description");
    e.rule = Some(Rule { id: None, name: Some(name), groups: str_at(v, "labels.job").into_iter().collect() });
    let instance = str_at(v, "labels.instance");
    e.target = Endpoint { hostname: instance.as_deref().map(host_of), port: instance.as_deref().and_then(port_of), ..Endpoint::default() };
    e.analyzer = Analyzer {
        name: "prometheus".into(),
        model: "Prometheus Monitoring".into(),
        category: "SIEM.NMS",
        data: "Data",
        method: "Threshold",
        hostname: None,
        ip: None,
    };
    Ok(())
}

/// `host:port`, `[v6]:port` or a bare host.
fn host_of(instance: &str) -> String {
    if let Some(rest) = instance.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match instance.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && !host.contains(':') => host.to_string(),
        _ => instance.to_string(),
    }
}

fn port_of(instance: &str) -> Option<u16> {
    instance.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).filter(|p| *p > 0)
}

/// The alerts of a webhook payload or an `/api/v1/alerts` envelope; other documents are one alert.
pub fn split(doc: Value) -> Vec<Value> {
    for path in ["data.alerts", "alerts"] {
        if let Some(Value::Array(alerts)) = at(&doc, path) {
            return alerts.clone();
        }
    }
    vec![doc]
}
