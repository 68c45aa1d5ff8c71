//! The original WithSecure collector's `config.yml` (top-level `clients:`), read unchanged.
//!
//! Each client becomes a tenant with one `withsecure` source writing, through its own file sink,
//! the original line format to the client's `output_log` (default `events/<name>.log`, where the
//! original really wrote). State goes to `state/` next to the config, where the original kept its
//! `state/<name>.json` files; those are imported on first start.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::ConfigError;

/// Keys the original accepted per client. `scope` was accepted and ignored.
const CLIENT_KEYS: &[&str] = &[
    "name",
    "client_id",
    "client_secret",
    "interval",
    "output_log",
    "rate_limit_per_minute",
    "start_mode",
    "start_date",
    "api_url",
    "organization_id",
    "scope",
];

pub fn is_legacy(value: &Value) -> bool {
    value.get("clients").is_some() && value.get("tenants").is_none()
}

pub fn translate(value: Value, config_path: &Path) -> Result<Value, Vec<ConfigError>> {
    let base = config_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    let Value::Object(top) = value else { unreachable!("is_legacy checked an object") };
    for key in top.keys().filter(|k| *k != "clients") {
        errors.push(ConfigError::at(
            key.clone(),
            "unknown field, expected `clients` (original collector format) or the sluice format with `tenants`",
        ));
    }
    let Some(Value::Array(clients)) = top.get("clients") else {
        return Err(vec![ConfigError::at("clients", "expected a list of clients")]);
    };
    let mut sinks = Map::new();
    let mut tenants = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let path = format!("clients[{i}]");
        let Some(c) = client.as_object() else {
            errors.push(ConfigError::at(&path, "expected a mapping"));
            continue;
        };
        for key in c.keys().filter(|k| !CLIENT_KEYS.contains(&k.as_str())) {
            errors.push(ConfigError::at(format!("{path}.{key}"), format!("unknown field, expected one of {}", CLIENT_KEYS.join(", "))));
        }
        let Some(name) = c.get("name").and_then(Value::as_str) else {
            errors.push(ConfigError::at(&path, "missing field `name`"));
            continue;
        };
        let output = c.get("output_log").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| format!("events/{name}.log"));
        let sink_name = format!("{name}-output");
        // `%` in a legacy path is literal: the original had no templates.
        let output = base.join(output).display().to_string().replace('%', "%%");
        sinks.insert(sink_name.clone(), json!({"type": "file", "path": output, "format": "vendor_wrapped"}));

        let mut source = Map::new();
        source.insert("name".into(), json!("withsecure"));
        source.insert("type".into(), json!("withsecure"));
        for key in ["client_id", "client_secret", "interval", "rate_limit_per_minute", "start_mode", "start_date", "api_url"] {
            if let Some(v) = c.get(key) {
                source.insert(key.into(), v.clone());
            }
        }
        if let Some(org) = c.get("organization_id").and_then(Value::as_str).filter(|o| !o.is_empty()) {
            source.insert("organizations".into(), json!([org]));
        }
        source.insert("legacy_state_file".into(), json!(base.join("state").join(format!("{name}.json"))));
        tenants.push(json!({"name": name, "sources": [Value::Object(source)], "sinks": [sink_name]}));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(json!({
        "state_dir": base.join("state"),
        "sinks": sinks,
        "tenants": tenants,
    }))
}

/// Points an error found in the translated config back at the client it came from.
pub fn rename_path(error: &mut ConfigError) {
    let Some(rest) = error.path.strip_prefix("tenants[") else { return };
    let Some((index, tail)) = rest.split_once(']') else { return };
    let tail = tail.strip_prefix(".sources[0]").unwrap_or(tail);
    error.path = format!("clients[{index}]{tail}");
}
