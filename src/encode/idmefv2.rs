//! IDMEFv2 (draft 2.D.V08, what Concerto SIEM reads) from the normalized model.

use serde_json::{Map, Value, json};

use crate::model::{Endpoint, Kind, Level, SecurityEvent};

pub const VERSION: &str = "2.D.V08";

/// Namespace of the message ids: the same event always gets the same IDMEFv2 `ID`.
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5c1c_e0a1_7d1e_4e5f_9b0e_2f6c_8a4d_1b3e);

pub fn message(e: &SecurityEvent) -> Value {
    let id = uuid::Uuid::new_v5(&ID_NAMESPACE, format!("{}/{}/{}", e.tenant, e.vendor, e.id).as_bytes());
    let mut m = Map::new();
    m.insert("Version".into(), json!(VERSION));
    m.insert("ID".into(), json!(id.to_string()));
    m.insert("CreateTime".into(), json!(e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
    m.insert("OrganisationName".into(), json!(e.tenant));
    let kind = match (e.category.split('.').next(), e.analyzer.category.starts_with("PHY.")) {
        (_, true) => "Physical",
        (Some("Availability"), _) => "Availability",
        _ => "Cyber",
    };
    m.insert("Type".into(), json!([kind]));
    m.insert("Category".into(), json!([e.category]));
    let malicious =
        e.kind == Kind::Alert && ["Malware", "Access", "Recon", "Sabotage", "Fraud", "Theft"].iter().any(|p| e.category.starts_with(p));
    m.insert("Cause".into(), json!(if malicious { "Malicious" } else { "Unknown" }));
    m.insert("Description".into(), json!(e.title));
    if let Some(d) = &e.description {
        m.insert("Note".into(), json!(d));
    }
    m.insert("Status".into(), json!(["Event"]));
    let priority = match e.severity.level {
        Level::Info => "Info",
        Level::Low => "Low",
        Level::Medium => "Medium",
        Level::High | Level::Critical => "High",
    };
    m.insert("Priority".into(), json!(priority));

    let mut analyzer = Map::new();
    analyzer.insert("Name".into(), json!(e.analyzer.name));
    analyzer.insert("Model".into(), json!(e.analyzer.model));
    analyzer.insert("Category".into(), json!([e.analyzer.category]));
    analyzer.insert("Data".into(), json!([e.analyzer.data]));
    analyzer.insert("Method".into(), json!([e.analyzer.method]));
    if let Some(h) = &e.analyzer.hostname {
        analyzer.insert("Hostname".into(), json!(h));
    }
    if let Some(ip) = e.analyzer.ip {
        analyzer.insert("IP".into(), json!(ip.to_string()));
    }
    m.insert("Analyzer".into(), Value::Object(analyzer));

    // Source and Target need their own ids; derived from the message id, they are stable too.
    let part_id = |part: &str| uuid::Uuid::new_v5(&id, part.as_bytes()).to_string();
    if let Some(mut s) = endpoint(&e.source, true) {
        s.insert("ID".into(), json!(part_id("source")));
        m.insert("Source".into(), json!([s]));
    }
    let mut attachments = Vec::new();
    let mut names = Vec::new();
    for (i, f) in e.files.iter().enumerate() {
        let name = format!("File{}", i + 1);
        let mut a = Map::new();
        a.insert("Name".into(), json!(name));
        if let Some(p) = &f.path {
            a.insert("FileName".into(), json!(p));
        }
        if let Some(s) = f.size {
            a.insert("Size".into(), json!(s));
        }
        let hashes: Vec<String> = f.hashes.iter().map(|(algo, hex)| format!("{}:{hex}", idmef_hash(algo))).collect();
        if !hashes.is_empty() {
            a.insert("Hash".into(), json!(hashes));
        }
        if !f.detections.is_empty() {
            a.insert("Note".into(), json!(format!("Detected: {}", f.detections.join(", "))));
        }
        attachments.push(Value::Object(a));
        names.push(name);
    }
    attachments.push(json!({"Name": "OriginalEvent", "ContentType": "application/json", "ContentEncoding": "json", "Content": e.raw}));
    names.push("OriginalEvent".into());
    let mut target = endpoint(&e.target, false).unwrap_or_default();
    target.insert("ID".into(), json!(part_id("target")));
    target.insert("Attachment".into(), json!(names));
    m.insert("Target".into(), json!([target]));
    m.insert("Attachment".into(), Value::Array(attachments));
    Value::Object(m)
}

/// `sha256` → `sha-256`, as IDMEFv2 names hash functions.
fn idmef_hash(algo: &str) -> String {
    match algo {
        "sha1" => "sha-1".into(),
        "sha256" => "sha-256".into(),
        "sha512" => "sha-512".into(),
        other => other.to_string(),
    }
}

fn endpoint(ep: &Endpoint, is_source: bool) -> Option<Map<String, Value>> {
    if ep.is_empty() {
        return None;
    }
    let mut m = Map::new();
    if let Some(ip) = ep.ip {
        m.insert("IP".into(), json!(ip.to_string()));
    }
    if let Some(h) = &ep.hostname {
        m.insert("Hostname".into(), json!(h));
    }
    if let Some(p) = ep.port {
        m.insert("Port".into(), json!([p]));
    }
    if let Some(u) = &ep.user {
        m.insert("User".into(), json!(u));
    }
    match &ep.protocol {
        Some(p) if is_source && valid_service_name(p) => {
            m.insert("Protocol".into(), json!([p]));
        }
        Some(p) if !is_source && valid_service_name(p) => {
            m.insert("Service".into(), json!(p));
        }
        _ => {}
    }
    let mut notes = Vec::new();
    if let Some(mac) = &ep.mac {
        notes.push(format!("MAC: {mac}"));
    }
    if let Some(url) = &ep.url {
        notes.push(format!("URL: {url}"));
    }
    if let Some(p) = &ep.process {
        notes.push(format!("Process: {p}"));
    }
    if !notes.is_empty() {
        m.insert("Note".into(), json!(notes.join("; ")));
    }
    Some(m)
}

/// IANA service names: letters and digits, single inner hyphens.
fn valid_service_name(s: &str) -> bool {
    !s.is_empty() && s.split('-').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

pub const VERSION_V04: &str = "2.D.V04";

/// The same message in draft 2.D.V04, for receivers that still want it: V04 has other
/// vocabularies, `Type` on the analyzer, a single `Status`, and no ids on source and target.
pub fn message_v04(e: &SecurityEvent) -> Value {
    let mut m = message(e);
    let obj = m.as_object_mut().expect("a message is an object");
    obj.insert("Version".into(), json!(VERSION_V04));
    let kind = obj.remove("Type").unwrap_or_else(|| json!(["Cyber"]));
    obj.remove("EntitySector");
    obj.remove("ReportTime");
    obj.insert("Status".into(), json!("Event"));
    obj.insert("Category".into(), json!([category_v04(e.category)]));
    if let Some(analyzer) = obj.get_mut("Analyzer").and_then(Value::as_object_mut) {
        analyzer.insert("Type".into(), kind);
        // V04 requires an analyzer IP; without one from the vendor, loopback, as the original
        // connectors wrote when they could not resolve their host.
        analyzer.entry("IP").or_insert_with(|| json!("127.0.0.1"));
        analyzer.insert("Category".into(), json!([analyzer_category_v04(e.analyzer.category)]));
        analyzer.insert("Data".into(), json!([data_v04(e.analyzer.data)]));
        analyzer.insert("Method".into(), json!([method_v04(e.analyzer.method)]));
    }
    for side in ["Source", "Target"] {
        if let Some(items) = obj.get_mut(side).and_then(Value::as_array_mut) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.remove("ID");
            }
        }
    }
    m
}

fn category_v04(v08: &str) -> &'static str {
    match v08 {
        "Recon.Network" | "Recon.Other" => "Recon.Scanning",
        "Access.Forced" => "Attempt.Login",
        "Access.Compromise" => "Attempt.Exploit",
        "Access.Escalation" => "Intrusion.AdminCompromise",
        "Access.Unauthorized" => "Information.UnauthorizedAccess",
        "Sabotage.Tampering" => "Information.UnauthorizedModification",
        "Availability.DoS" => "Availability.DoS",
        "Availability.Outage" => "Availability.Outage",
        "Availability.Failure" => "Availability.Failure",
        "Operational.Policy Violation" | "Operational.Other" => "Malicious.Configuration",
        c if c.starts_with("Malware.") => "Malicious.System",
        "Other.Undetermined" => "Other.Undetermined",
        _ => "Other.Uncategorised",
    }
}

fn analyzer_category_v04(v08: &str) -> &'static str {
    match v08 {
        "NET.NIDS" => "NIDS",
        "NET.WIDS" => "WIDS",
        "NET.WAF" => "WAF",
        "END.HIDS" => "HIDS",
        "END.EDR" => "EDR",
        "END.AV" | "END.EPP" => "AV",
        "SIEM.NMS" => "NMS",
        "PHY.MOT-SEN" => "ODC",
        _ => "LOG",
    }
}

fn data_v04(v08: &str) -> &'static str {
    match v08 {
        "Authentication" => "Auth",
        "Network" => "Network",
        "File" => "File",
        "Content" => "Content",
        "Data" => "Data",
        "Images" => "Images",
        _ => "Log",
    }
}

fn method_v04(v08: &str) -> &'static str {
    match v08 {
        "Signature" | "Rule-based" => "Signature",
        "Behavioral" | "Heuristic" => "Heuristic",
        "Integrity" => "Integrity",
        "Threshold" => "Threshold",
        "Movement" => "Movement",
        "Anomaly" | "Statistical" => "Statistical",
        _ => "Monitor",
    }
}
