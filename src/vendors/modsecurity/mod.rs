//! ModSecurity v3 JSON audit log records.

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor::object_per_line(
    "modsecurity",
    "v3 JSON audit log",
    "message severity 0–1 critical, 2–3 high, 4 medium, 5 low, else info",
    normalize,
);

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let tx = at(v, "transaction").ok_or_else(|| NormalizeError::new("transaction", "missing"))?;
    e.product = "ModSecurity".into();
    if let Some(id) = str_at(tx, "unique_id") {
        e.id = id;
    }
    if let Some(t) = str_at(tx, "time_stamp").and_then(|s| parse_time(&s)) {
        e.time = t;
    }
    let messages = at(tx, "messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let first = messages.first().cloned().unwrap_or(Value::Null);
    e.kind = if messages.is_empty() { Kind::Telemetry } else { Kind::Alert };
    let sev = str_at(&first, "details.severity").unwrap_or_default();
    e.severity = Severity {
        level: match sev.parse::<i64>() {
            Ok(0..=1) => Level::Critical,
            Ok(2..=3) => Level::High,
            Ok(4) => Level::Medium,
            Ok(5) => Level::Low,
            Ok(_) => Level::Info,
            Err(_) => level_from_word(&sev).unwrap_or(if messages.is_empty() { Level::Info } else { Level::Medium }),
        },
        original: sev,
    };
    e.title = str_at(&first, "message").unwrap_or_else(|| "HTTP transaction".into());
    let tags: Vec<String> = at(&first, "details.tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let attack = tags.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        ["attack-", "sqli", "xss", "rce", "lfi", "rfi", "injection", "protocol-violation"].iter().any(|k| t.contains(k))
    });
    e.category = if attack { "Access.Compromise" } else { "Other.Uncategorised" };
    e.rule = Some(Rule { id: str_at(&first, "details.ruleId"), name: str_at(&first, "message"), groups: tags });
    e.source = Endpoint { ip: ip_at(tx, "client_ip"), port: port_at(tx, "client_port"), ..Endpoint::default() };
    e.target = Endpoint {
        ip: ip_at(tx, "host_ip"),
        port: port_at(tx, "host_port"),
        url: str_at(tx, "request.uri"),
        hostname: str_at(tx, "request.headers.Host").or_else(|| str_at(tx, "server_id")),
        protocol: Some("http".into()),
        ..Endpoint::default()
    };
    e.analyzer = Analyzer {
        name: "modsecurity".into(),
        model: "ModSecurity WAF".into(),
        category: "NET.WAF",
        data: "Content",
        method: "Signature",
        hostname: None,
        ip: None,
    };
    Ok(())
}
