//! One security-event model for every vendor. Decoders (one file per vendor) fill a
//! [`SecurityEvent`] from the vendor's JSON; encoders (`crate::encode`) read only the model. N
//! decoders + M encoders, never N×M mappings. Pure functions, no I/O.

mod clamav;
mod kismet;
pub mod mapping;
mod modsecurity;
mod prometheus;
mod suricata;
mod wazuh;
mod withsecure;
mod zabbix;
mod zoneminder;

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Event;

/// What kind of record an event is (seed 003's event types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Alert,
    SecurityEvent,
    Anomaly,
    RiskAssessment,
    ComplianceCheck,
    Telemetry,
    Inventory,
    Audit,
    Workflow,
}

impl Kind {
    /// The name as written in configs and documents (`alert`, `security_event` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::SecurityEvent => "security_event",
            Kind::Anomaly => "anomaly",
            Kind::RiskAssessment => "risk_assessment",
            Kind::ComplianceCheck => "compliance_check",
            Kind::Telemetry => "telemetry",
            Kind::Inventory => "inventory",
            Kind::Audit => "audit",
            Kind::Workflow => "workflow",
        }
    }
}

/// One severity scale for every vendor; the vendor's own value is kept beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// The risk score (0–100) of this level, as written into every event.
    pub fn risk_score(self) -> u8 {
        match self {
            Level::Info => 10,
            Level::Low => 25,
            Level::Medium => 50,
            Level::High => 75,
            Level::Critical => 95,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Severity {
    pub level: Level,
    /// The vendor's value as it was (`"2"`, `"warning"`, `"12"`).
    pub original: String,
}

/// A host, network endpoint or identity on one side of an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Endpoint {
    pub fn is_empty(&self) -> bool {
        *self == Endpoint::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct File {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// (algorithm, lower-case hex): `("sha256", "…")`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<(String, String)>,
    /// Detection names found in the file (malware names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detections: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// A MITRE ATT&CK reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mitre {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technique_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technique: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tactic: Option<String>,
}

/// The product that observed the event, in IDMEFv2 V08 vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analyzer {
    pub name: String,
    pub model: String,
    /// IDMEFv2 `analyzerCategoryEnum` (`NET.NIDS`, `END.EPP` …).
    pub category: &'static str,
    /// IDMEFv2 `analyzerDataEnum` (`Network`, `File`, `Log` …).
    pub data: &'static str,
    /// IDMEFv2 `analyzerMethodEnum` (`Signature`, `Monitor` …).
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}

/// The normalized event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityEvent {
    /// Stable id (the vendor's where it has one).
    pub id: String,
    pub tenant: String,
    /// When it happened, per the vendor; when the vendor says nothing, when sluice read it.
    pub time: DateTime<Utc>,
    pub kind: Kind,
    pub severity: Severity,
    /// 0–100, from the severity level (see [`Level::risk_score`]).
    pub risk_score: u8,
    /// IDMEFv2 V08 `categoryEnum` value (`Recon.Network`, `Malware.Virus` …).
    pub category: &'static str,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the product did (`blocked`, `allowed` …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Endpoint::is_empty")]
    pub source: Endpoint,
    #[serde(skip_serializing_if = "Endpoint::is_empty")]
    pub target: Endpoint,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mitre: Vec<Mitre>,
    pub vendor: String,
    pub product: String,
    pub analyzer: Analyzer,
    /// The vendor JSON, untouched.
    pub raw: Value,
}

/// Why an event could not be normalized: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct NormalizeError {
    pub field: String,
    pub reason: String,
}

impl NormalizeError {
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        NormalizeError { field: field.to_string(), reason: reason.into() }
    }
}

pub use clamav::from_log_line as clamav_log_line;
pub use prometheus::split as prometheus_alerts;

/// Vendors with a decoder, as written in `decoder:` and `sluice convert --decoder`.
pub const VENDORS: &[&str] =
    &["withsecure", "suricata", "wazuh", "clamav", "modsecurity", "kismet", "prometheus", "zabbix", "zoneminder", "json"];

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
            let mut e = normalize_value("json", raw, &event.id, &event.tenant, event.received_at).expect("the generic decoder accepts any object");
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
    match vendor {
        "withsecure" => withsecure::decode(&raw, &mut e)?,
        "suricata" => suricata::decode(&raw, &mut e)?,
        "wazuh" => wazuh::decode(&raw, &mut e)?,
        "clamav" => clamav::decode(&raw, &mut e)?,
        "modsecurity" => modsecurity::decode(&raw, &mut e)?,
        "kismet" => kismet::decode(&raw, &mut e)?,
        "prometheus" => prometheus::decode(&raw, &mut e)?,
        "zabbix" => zabbix::decode(&raw, &mut e)?,
        "zoneminder" => zoneminder::decode(&raw, &mut e)?,
        _ => generic(&raw, &mut e),
    }
    if e.title.is_empty() {
        e.title = format!("{} event", e.product);
    }
    e.risk_score = e.severity.level.risk_score();
    e.raw = raw;
    Ok(e)
}

/// `decoder: json`: what can be guessed from common field names.
fn generic(raw: &Value, e: &mut SecurityEvent) {
    if let Some(t) = ["@timestamp", "timestamp", "time", "ts"].iter().find_map(|k| str_at(raw, k).and_then(|s| parse_time(&s))) {
        e.time = t;
    }
    e.title = ["message", "msg", "title", "description"].iter().find_map(|k| str_at(raw, k)).unwrap_or_default();
    e.severity.original = ["severity", "level"].iter().find_map(|k| str_at(raw, k)).unwrap_or_default();
    e.severity.level = level_from_word(&e.severity.original).unwrap_or(Level::Info);
}

// ---- helpers shared by the decoders ----

/// The value at a dotted path (`alert.signature`).
pub(crate) fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k)).filter(|v| !v.is_null())
}

/// A string at a path; numbers and booleans are given as text. Empty strings count as absent.
pub(crate) fn str_at(v: &Value, path: &str) -> Option<String> {
    match at(v, path)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn int_at(v: &Value, path: &str) -> Option<i64> {
    match at(v, path)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn ip_at(v: &Value, path: &str) -> Option<IpAddr> {
    str_at(v, path).and_then(|s| s.trim().parse().ok())
}

pub(crate) fn port_at(v: &Value, path: &str) -> Option<u16> {
    int_at(v, path).and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)
}

/// RFC 3339 and the variants vendors write: `+0000` offsets, a space instead of `T`, no offset
/// (taken as UTC), epoch seconds or milliseconds.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%a %b %d %H:%M:%S %Y"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d.and_utc());
        }
    }
    epoch(t.parse::<f64>().ok()?)
}

/// Epoch seconds, or milliseconds when the number is too large to be seconds.
pub(crate) fn epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let millis = if n > 1e12 { n } else { n * 1000.0 };
    DateTime::from_timestamp_millis(millis as i64)
}

pub(crate) fn level_from_word(word: &str) -> Option<Level> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "fatal" | "fatal_error" | "emergency" | "emerg" | "alert" | "disaster" => Level::Critical,
        "high" | "error" | "err" | "severe" | "major" => Level::High,
        "medium" | "warning" | "warn" | "average" | "moderate" => Level::Medium,
        "low" | "notice" | "minor" => Level::Low,
        "info" | "informational" | "information" | "debug" | "none" | "not_classified" => Level::Info,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
