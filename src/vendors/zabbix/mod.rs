//! Zabbix problems (as `problem.get` returns them, enriched with hosts and interface).

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor =
    Vendor::object_per_line("zabbix", "problems (`problem.get`, enriched)", "5 critical, 4 high, 3 medium, 2 low", normalize);

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let name = str_at(v, "name").ok_or_else(|| NormalizeError::new("name", "missing"))?;
    e.product = "Zabbix".into();
    if let Some(id) = str_at(v, "eventid") {
        e.id = id;
    }
    if let Some(t) = int_at(v, "clock").and_then(|c| epoch(c as f64)) {
        e.time = t;
    }
    let sev = int_at(v, "severity");
    e.severity = Severity {
        level: match sev {
            Some(5) => Level::Critical,
            Some(4) => Level::High,
            Some(3) => Level::Medium,
            Some(2) => Level::Low,
            _ => Level::Info,
        },
        original: sev.map(|s| s.to_string()).unwrap_or_default(),
    };
    e.kind = Kind::Alert;
    let lower = name.to_ascii_lowercase();
    e.category = if lower.contains("unreachable") || lower.contains("down") || lower.contains("unavailable") {
        "Availability.Outage"
    } else if lower.contains("load") || lower.contains("cpu") || lower.contains("memory") || lower.contains("disk") {
        "Availability.Failure"
    } else {
        "Other.Uncategorised"
    };
    e.title = name.clone();
    e.rule = Some(Rule { id: str_at(v, "objectid"), name: Some(name), groups: Vec::new() });
    e.target = Endpoint {
        hostname: str_at(v, "hosts.0.name").or_else(|| at(v, "hosts").and_then(|h| h.get(0)).and_then(|h| str_at(h, "name"))),
        ip: ip_at(v, "extra.ip"),
        port: port_at(v, "extra.port"),
        ..Endpoint::default()
    };
    e.analyzer = Analyzer {
        name: "zabbix".into(),
        model: "Zabbix Monitoring".into(),
        category: "SIEM.NMS",
        data: "Data",
        method: "Threshold",
        hostname: str_at(v, "extra_target.hostname"),
        ip: ip_at(v, "extra_target.ip"),
    };
    Ok(())
}
