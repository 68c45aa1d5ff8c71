//! Wazuh alerts (alerts.json, and what a Wazuh integration posts).

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "wazuh",
    input: "alerts.json / integration payloads",
    severity: "`rule.level` ≥12 critical, ≥8 high, ≥5 medium, ≥3 low, else info",
    normalize,
    split: None,
    text_line: None,
    id_field: Some("id"),
};

/// The original Wazuh-to-MongoDB service's rule: ≥12 critical, ≥8 high, ≥5 medium, else low (level 0–2 are informational).
pub fn level(rule_level: i64) -> Level {
    match rule_level {
        12.. => Level::Critical,
        8..=11 => Level::High,
        5..=7 => Level::Medium,
        3..=4 => Level::Low,
        _ => Level::Info,
    }
}

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let rule_level = int_at(v, "rule.level").ok_or_else(|| NormalizeError::new("rule.level", "missing or not a number"))?;
    e.product = "Wazuh".into();
    if let Some(id) = str_at(v, "id") {
        e.id = id;
    }
    if let Some(t) = str_at(v, "timestamp").and_then(|s| parse_time(&s)) {
        e.time = t;
    }
    e.severity = Severity { level: level(rule_level), original: rule_level.to_string() };
    e.kind = if rule_level >= 5 { Kind::Alert } else { Kind::SecurityEvent };
    let groups: Vec<String> = at(v, "rule.groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    e.title = str_at(v, "rule.description").unwrap_or_else(|| "Wazuh alert".into());
    e.description = str_at(v, "full_log");
    e.rule = Some(Rule { id: str_at(v, "rule.id"), name: str_at(v, "rule.description"), groups: groups.clone() });
    e.category = if at(v, "syscheck").is_some() {
        e.kind = Kind::ComplianceCheck;
        "Sabotage.Tampering"
    } else if groups.iter().any(|g| g.contains("authentication_failed") || g.contains("invalid_login")) {
        "Access.Forced"
    } else if groups.iter().any(|g| g.contains("authentication_success")) {
        "Access.Authorized"
    } else if groups.iter().any(|g| g.contains("rootcheck") || g.contains("malware") || g.contains("virus")) {
        "Malware.Other"
    } else if groups.iter().any(|g| g.contains("sca")) {
        e.kind = Kind::ComplianceCheck;
        "Operational.Policy Violation"
    } else {
        "Other.Uncategorised"
    };
    let agent = Endpoint { hostname: str_at(v, "agent.name"), ip: ip_at(v, "agent.ip"), ..Endpoint::default() };
    e.source =
        Endpoint { ip: ip_at(v, "data.srcip"), port: port_at(v, "data.srcport"), user: str_at(v, "data.srcuser"), ..Endpoint::default() };
    e.target = Endpoint { user: str_at(v, "data.dstuser").or_else(|| str_at(v, "syscheck.uname_after")), ..agent.clone() };
    if let Some(path) = str_at(v, "syscheck.path") {
        let mut hashes = Vec::new();
        for (key, algo) in [("sha256_after", "sha256"), ("sha1_after", "sha1"), ("md5_after", "md5")] {
            if let Some(h) = str_at(v, &format!("syscheck.{key}")).filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit())) {
                hashes.push((algo.to_string(), h.to_ascii_lowercase()));
            }
        }
        e.files.push(File { path: Some(path), size: int_at(v, "syscheck.size_after").map(|s| s as u64), hashes, detections: Vec::new() });
    }
    let list = |k: &str| -> Vec<String> {
        at(v, k).and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let (ids, techniques, tactics) = (list("rule.mitre.id"), list("rule.mitre.technique"), list("rule.mitre.tactic"));
    for (i, id) in ids.iter().enumerate() {
        e.mitre.push(Mitre {
            technique_id: Some(id.clone()),
            technique: techniques.get(i).cloned(),
            tactic: tactics.get(i).or(tactics.first()).cloned(),
        });
    }
    e.analyzer = Analyzer {
        name: "wazuh".into(),
        model: "Wazuh".into(),
        category: "END.HIDS",
        data: if e.files.is_empty() { "Log" } else { "File" },
        method: if e.files.is_empty() { "Rule-based" } else { "Integrity" },
        hostname: str_at(v, "manager.name"),
        ip: None,
    };
    Ok(())
}
