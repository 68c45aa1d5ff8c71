//! WithSecure Elements security events.

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "withsecure",
    input: "Elements security events",
    severity: "critical→critical, warning→medium, info→info",
    normalize,
    split: None,
    text_line: None,
    id_field: Some("id"),
};

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let engine = str_at(v, "engine").ok_or_else(|| NormalizeError::new("engine", "missing"))?;
    e.product = "WithSecure Elements".into();
    if let Some(id) = str_at(v, "id") {
        e.id = id;
    }
    if let Some(t) =
        ["clientTimestamp", "serverTimestamp", "persistenceTimestamp"].iter().find_map(|k| str_at(v, k).and_then(|s| parse_time(&s)))
    {
        e.time = t;
    }
    e.severity.original = str_at(v, "severity").unwrap_or_default();
    e.severity.level = match e.severity.original.as_str() {
        "critical" | "fatal_error" => Level::Critical,
        "error" => Level::High,
        "warning" => Level::Medium,
        _ => Level::Info,
    };
    e.kind = if e.severity.level >= Level::Medium { Kind::Alert } else { Kind::SecurityEvent };
    e.action = str_at(v, "action");
    let lower = engine.to_ascii_lowercase();
    e.category = match lower.as_str() {
        "filescanning" | "realtimescanning" | "manualscanning" | "amsi" | "deepguard" => "Malware.Other",
        "dataguard" => "Malware.Ransomware",
        "tamperprotection" | "integritychecker" => "Sabotage.Tampering",
        "applicationcontrol" | "devicecontrol" => "Operational.Policy Violation",
        "browsingprotection"
        | "webtrafficscanning"
        | "webcontentcontrol"
        | "reputationbasedbrowsing"
        | "connectioncontrol"
        | "firewall"
        | "xfence" => "Access.Unauthorized",
        "setting" | "product" => "Operational.Other",
        _ => "Other.Uncategorised",
    };
    let detail = ["details.infectionName", "details.name", "details.description", "details.url"].iter().find_map(|k| str_at(v, k));
    e.title = match (str_at(v, "description").or_else(|| str_at(v, "message")), detail) {
        (Some(d), _) => d,
        (None, Some(d)) => format!("{engine} {}: {d}", e.action.as_deref().unwrap_or("event")),
        (None, None) => format!("{engine} {}", e.action.as_deref().unwrap_or("event")),
    };
    e.rule = Some(Rule { id: None, name: Some(engine.clone()), groups: vec![engine.clone()] });
    e.target = Endpoint {
        hostname: str_at(v, "device.name").or_else(|| str_at(v, "target.name")),
        user: str_at(v, "userName").or_else(|| str_at(v, "details.userName")),
        url: str_at(v, "details.url"),
        process: str_at(v, "details.processName").or_else(|| str_at(v, "details.initiator")),
        ip: ip_at(v, "details.ipAddress"),
        ..Endpoint::default()
    };
    let mut hashes = Vec::new();
    for algo in ["sha1", "sha256", "md5"] {
        if let Some(h) = str_at(v, &format!("details.{algo}")).filter(|h| h.chars().all(|c| c.is_ascii_hexdigit())) {
            hashes.push((algo.to_string(), h.to_ascii_lowercase()));
        }
    }
    let path = str_at(v, "details.filePath").or_else(|| str_at(v, "details.path"));
    if path.is_some() || !hashes.is_empty() {
        let detections = str_at(v, "details.infectionName").into_iter().collect();
        e.files.push(File { path, size: int_at(v, "details.fileSize").map(|s| s as u64), hashes, detections });
    }
    e.analyzer = Analyzer {
        name: "withsecure".into(),
        model: "WithSecure Elements".into(),
        category: if lower == "edr" { "END.EDR" } else { "END.EPP" },
        data: "File",
        method: if lower == "deepguard" || lower == "edr" { "Behavioral" } else { "Signature" },
        hostname: str_at(v, "device.name"),
        ip: None,
    };
    Ok(())
}
