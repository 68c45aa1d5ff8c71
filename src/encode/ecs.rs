//! Elastic Common Schema 8.x documents from the normalized model, ready for Elasticsearch or
//! OpenSearch.

use serde_json::{Map, Value, json};

use crate::model::{Endpoint, Kind, SecurityEvent};

pub const ECS_VERSION: &str = "8.11.0";

pub fn document(e: &SecurityEvent) -> Value {
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), json!(e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
    doc.insert("ecs".into(), json!({"version": ECS_VERSION}));
    doc.insert("message".into(), json!(e.title));
    let mut event = Map::new();
    event.insert("id".into(), json!(e.id));
    event.insert(
        "kind".into(),
        json!(match e.kind {
            Kind::Alert => "alert",
            Kind::Inventory => "state",
            _ => "event",
        }),
    );
    event.insert("category".into(), json!(categories(e)));
    event.insert("type".into(), json!([event_type(e)]));
    event.insert("severity".into(), json!(e.risk_score));
    event.insert("risk_score".into(), json!(e.risk_score as f64));
    event.insert("module".into(), json!(e.vendor));
    event.insert("provider".into(), json!(e.product));
    event.insert("dataset".into(), json!(format!("{}.{}", e.vendor, e.analyzer.data.to_ascii_lowercase())));
    if let Some(a) = &e.action {
        event.insert("action".into(), json!(a));
    }
    if let Some(d) = &e.description {
        event.insert("reason".into(), json!(d));
    }
    doc.insert("event".into(), Value::Object(event));
    doc.insert("organization".into(), json!({"name": e.tenant}));
    doc.insert("observer".into(), json!({"vendor": e.vendor, "product": e.product, "type": observer_type(e.analyzer.category)}));

    if let Some(rule) = &e.rule {
        let mut r = Map::new();
        if let Some(id) = &rule.id {
            r.insert("id".into(), json!(id));
        }
        if let Some(name) = &rule.name {
            r.insert("name".into(), json!(name));
        }
        if !rule.groups.is_empty() {
            r.insert("category".into(), json!(rule.groups.join(",")));
        }
        doc.insert("rule".into(), Value::Object(r));
    }
    if !e.mitre.is_empty() {
        let ids: Vec<_> = e.mitre.iter().filter_map(|m| m.technique_id.clone()).collect();
        let names: Vec<_> = e.mitre.iter().filter_map(|m| m.technique.clone()).collect();
        let tactics: Vec<_> = e.mitre.iter().filter_map(|m| m.tactic.clone()).collect();
        doc.insert(
            "threat".into(),
            json!({"framework": "MITRE ATT&CK", "technique": {"id": ids, "name": names}, "tactic": {"name": tactics}}),
        );
    }
    if let Some(s) = endpoint(&e.source) {
        doc.insert("source".into(), s);
    }
    if let Some(d) = endpoint(&e.target) {
        doc.insert("destination".into(), d);
    }
    if let Some(h) = &e.target.hostname {
        doc.insert("host".into(), json!({"name": h}));
    }
    if let Some(u) = e.target.user.as_ref().or(e.source.user.as_ref()) {
        doc.insert("user".into(), json!({"name": u}));
    }
    if let Some(url) = e.target.url.as_ref() {
        doc.insert("url".into(), json!({"original": url}));
    }
    if let Some(p) = e.target.process.as_ref().or(e.source.process.as_ref()) {
        doc.insert("process".into(), json!({"name": p}));
    }
    if let Some(proto) = e.source.protocol.as_ref().or(e.target.protocol.as_ref()) {
        doc.insert("network".into(), json!({"protocol": proto}));
    }
    if let Some(f) = e.files.first() {
        let mut file = Map::new();
        if let Some(p) = &f.path {
            file.insert("path".into(), json!(p));
            file.insert("name".into(), json!(p.rsplit(['/', '\\']).next().unwrap_or(p)));
        }
        if let Some(s) = f.size {
            file.insert("size".into(), json!(s));
        }
        if !f.hashes.is_empty() {
            let hashes: Map<String, Value> = f.hashes.iter().map(|(a, h)| (a.clone(), json!(h))).collect();
            file.insert("hash".into(), Value::Object(hashes));
        }
        doc.insert("file".into(), Value::Object(file));
    }
    doc.insert("related".into(), related(e));
    doc.insert("labels".into(), json!({"tenant": e.tenant, "idmef_category": e.category}));
    Value::Object(doc)
}

fn categories(e: &SecurityEvent) -> Vec<&'static str> {
    let mut out = Vec::new();
    let c = e.category;
    if c.starts_with("Malware") {
        out.push("malware");
    }
    if c == "Access.Forced" || c == "Access.Authorized" {
        out.push("authentication");
    }
    if !e.files.is_empty() && (c.starts_with("Sabotage") || e.analyzer.method == "Integrity") {
        out.push("file");
    }
    match e.analyzer.category {
        "NET.NIDS" | "NET.WIDS" => out.extend(["network", "intrusion_detection"]),
        "NET.WAF" => out.extend(["web", "intrusion_detection"]),
        "END.HIDS" | "END.EDR" => out.push("intrusion_detection"),
        "SIEM.NMS" => out.push("host"),
        _ => {}
    }
    if out.is_empty() {
        out.push(if e.kind == Kind::Alert { "threat" } else { "host" });
    }
    out.dedup();
    out
}

fn event_type(e: &SecurityEvent) -> &'static str {
    match e.action.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("blocked" | "deny" | "denied" | "drop" | "dropped" | "quarantined" | "rejected") => "denied",
        Some("allowed" | "allow" | "pass") => "allowed",
        _ if !e.files.is_empty() && e.analyzer.method == "Integrity" => "change",
        _ => "info",
    }
}

fn observer_type(analyzer_category: &str) -> &'static str {
    match analyzer_category {
        "NET.NIDS" | "NET.WIDS" | "END.HIDS" => "ids",
        "NET.WAF" => "waf",
        "END.AV" | "END.EPP" | "END.EDR" => "antivirus",
        "SIEM.NMS" => "monitoring",
        _ => "sensor",
    }
}

fn endpoint(ep: &Endpoint) -> Option<Value> {
    let mut m = Map::new();
    if let Some(ip) = ep.ip {
        m.insert("ip".into(), json!(ip.to_string()));
        m.insert("address".into(), json!(ip.to_string()));
    } else if let Some(h) = &ep.hostname {
        m.insert("address".into(), json!(h));
    }
    if let Some(h) = &ep.hostname {
        m.insert("domain".into(), json!(h));
    }
    if let Some(p) = ep.port {
        m.insert("port".into(), json!(p));
    }
    if let Some(mac) = &ep.mac {
        m.insert("mac".into(), json!(mac.to_ascii_uppercase().replace(':', "-")));
    }
    if let Some(u) = &ep.user {
        m.insert("user".into(), json!({"name": u}));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn related(e: &SecurityEvent) -> Value {
    let mut ip = Vec::new();
    let mut user = Vec::new();
    let mut hosts = Vec::new();
    for ep in [&e.source, &e.target] {
        ip.extend(ep.ip.map(|i| i.to_string()));
        user.extend(ep.user.clone());
        hosts.extend(ep.hostname.clone());
    }
    let hash: Vec<String> = e.files.iter().flat_map(|f| f.hashes.iter().map(|(_, h)| h.clone())).collect();
    for list in [&mut ip, &mut user, &mut hosts] {
        list.sort();
        list.dedup();
    }
    json!({"ip": ip, "user": user, "hosts": hosts, "hash": hash})
}
