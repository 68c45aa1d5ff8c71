//! Suricata EVE JSON (`alert`, `anomaly` and the other event types).

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor::object_per_line(
    "suricata",
    "EVE JSON (`alert`, `anomaly`, other types as telemetry)",
    "`alert.severity` 1→high, 2→medium, 3→low (1 is the most severe)",
    normalize,
);

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let event_type = str_at(v, "event_type").ok_or_else(|| NormalizeError::new("event_type", "missing"))?;
    e.product = "Suricata".into();
    if let Some(t) = str_at(v, "timestamp").and_then(|s| parse_time(&s)) {
        e.time = t;
    }
    let protocol = str_at(v, "app_proto").or_else(|| str_at(v, "proto")).map(|p| p.to_ascii_lowercase());
    e.source = Endpoint { ip: ip_at(v, "src_ip"), port: port_at(v, "src_port"), protocol: protocol.clone(), ..Endpoint::default() };
    e.target = Endpoint {
        ip: ip_at(v, "dest_ip"),
        port: port_at(v, "dest_port"),
        protocol,
        hostname: str_at(v, "http.hostname").or_else(|| str_at(v, "tls.sni")),
        url: str_at(v, "http.url"),
        ..Endpoint::default()
    };
    match event_type.as_str() {
        "alert" => {
            e.kind = Kind::Alert;
            // Suricata severity 1 is the most severe.
            let sev = int_at(v, "alert.severity");
            e.severity.original = sev.map(|s| s.to_string()).unwrap_or_default();
            e.severity.level = match sev {
                Some(1) => Level::High,
                Some(2) => Level::Medium,
                Some(3) => Level::Low,
                _ => Level::Info,
            };
            if str_at(v, "alert.metadata.signature_severity.0").is_some_and(|s| s == "Critical") {
                e.severity.level = Level::Critical;
            }
            e.title = str_at(v, "alert.signature").unwrap_or_else(|| "Suricata alert".into());
            e.description = str_at(v, "alert.category");
            e.action = str_at(v, "alert.action");
            e.rule = Some(Rule {
                id: str_at(v, "alert.signature_id"),
                name: str_at(v, "alert.signature"),
                groups: str_at(v, "alert.category").into_iter().collect(),
            });
            e.category = category(e.description.as_deref().unwrap_or_default());
            e.mitre = mitre(v);
        }
        "anomaly" => {
            e.kind = Kind::Anomaly;
            e.severity = Severity { level: Level::Low, original: String::new() };
            let what = str_at(v, "anomaly.event").or_else(|| str_at(v, "anomaly.type")).unwrap_or_else(|| "anomaly".into());
            e.title = format!("Suricata anomaly: {what}");
            e.category = "Other.Undetermined";
        }
        other => {
            e.kind = Kind::Telemetry;
            e.title = format!("Suricata {other}");
        }
    }
    e.analyzer = Analyzer {
        name: "suricata".into(),
        model: "Suricata NIDS".into(),
        category: "NET.NIDS",
        data: "Network",
        method: "Signature",
        hostname: str_at(v, "host"),
        ip: None,
    };
    Ok(())
}

/// IDMEFv2 category from the classification text of the rule.
fn category(class: &str) -> &'static str {
    let c = class.to_ascii_lowercase();
    if c.contains("trojan") || c.contains("malware") || c.contains("malicious") {
        "Malware.Trojan"
    } else if c.contains("scan") || c.contains("recon") || c.contains("information leak") {
        "Recon.Network"
    } else if c.contains("denial of service") {
        "Availability.DoS"
    } else if c.contains("privilege") || c.contains("administrator") {
        "Access.Escalation"
    } else if c.contains("policy") {
        "Operational.Policy Violation"
    } else if c.contains("web application attack") || c.contains("exploit") || c.contains("attempted") {
        "Access.Compromise"
    } else {
        "Other.Uncategorised"
    }
}

/// ET rules carry `mitre_technique_id`, `mitre_technique_name`, `mitre_tactic_name` in metadata.
fn mitre(v: &Value) -> Vec<Mitre> {
    let first = |k: &str| str_at(v, &format!("alert.metadata.{k}.0"));
    let m =
        Mitre { technique_id: first("mitre_technique_id"), technique: first("mitre_technique_name"), tactic: first("mitre_tactic_name") };
    if m == Mitre::default() { Vec::new() } else { vec![m] }
}
