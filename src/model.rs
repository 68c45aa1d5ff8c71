//! The one security-event model every vendor is normalized into and every encoder reads:
//! N vendors + M formats, never N×M mappings. A leaf module: no I/O, no imports of components.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What kind of record an event is (the SIEM connections' `enabled_event_types`).
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

/// The V08 category with this name, if the schema has it (`Malware.Virus`, `Recon.Network` …).
pub fn known_category(name: &str) -> Option<&'static str> {
    static CATEGORIES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let all = CATEGORIES.get_or_init(|| {
        let schema: Value = serde_json::from_str(crate::schemas::IDMEFV2).expect("the embedded schema is JSON");
        schema["definitions"]["categoryEnum"]["enum"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(|s| &*Box::leak(s.to_string().into_boxed_str())).collect())
            .unwrap_or_default()
    });
    all.iter().copied().find(|c| *c == name)
}
