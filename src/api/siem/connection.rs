//! The original SIEM integration module's connection, as its API takes it, and its translation into a sink of the
//! config file's kinds (`splunk_hec`, `elasticsearch`, `syslog`) with its policy.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::config::SinkConfig;
use crate::settings::ConfigError;
use crate::sinks::SinkSettings;
use crate::sinks::policy::SinkPolicy;

/// A connection as posted (the original SIEM integration module's fields, plus `tenant` and `leef`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub name: String,
    /// `splunk`, `elastic`, `syslog`, `cef` (syslog with CEF bodies) or `qradar` (syslog with LEEF).
    pub siem_type: String,
    /// Host name or address.
    pub endpoint: String,
    /// Default: 8088 (splunk), 9200 (elastic), 514 (syslog; 6514 with TLS).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "yes")]
    pub use_ssl: bool,
    #[serde(default = "yes")]
    pub verify_ssl: bool,
    /// `token`, `basic`, `apikey`; for syslog the transport: `udp`, `tcp`, `tls`.
    #[serde(default)]
    pub auth_type: Option<String>,
    /// Write-only.
    #[serde(default, skip_serializing)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Write-only.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    #[serde(default)]
    pub index_name: Option<String>,
    #[serde(default)]
    pub source_type: Option<String>,
    /// Event kinds to export (`alert`, `security_event`, `anomaly`, `risk_assessment`,
    /// `compliance_check`, `telemetry`, `workflow_execution`); empty: all.
    #[serde(default)]
    pub enabled_event_types: Vec<String>,
    /// `info`, `low`, `medium`, `high`, `critical`.
    #[serde(default)]
    pub min_severity: Option<String>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default)]
    pub batch_interval_seconds: u64,
    /// Syslog facility name (`local0` …).
    #[serde(default)]
    pub facility: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Syslog bodies in LEEF (QRadar) instead of CEF.
    #[serde(default)]
    pub leef: bool,
    /// The tenant whose events it receives. A tenant token's own tenant by default.
    #[serde(default)]
    pub tenant: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_batch_size() -> usize {
    100
}

/// The original SIEM integration module's event types → sluice's kinds.
fn event_kind(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "alert" => "alert",
        "security_event" => "security_event",
        "anomaly" => "anomaly",
        "risk_assessment" => "risk_assessment",
        "compliance_check" => "compliance_check",
        "telemetry" => "telemetry",
        "workflow_execution" | "workflow" => "workflow",
        "inventory" => "inventory",
        "audit" => "audit",
        _ => return None,
    })
}

impl Connection {
    /// The sink this connection is, named `id`; errors name the connection's fields.
    pub fn to_sink(&self, id: &str) -> Result<SinkConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let scheme = if self.use_ssl { "https" } else { "http" };
        let host = if self.endpoint.contains(':') && !self.endpoint.starts_with('[') {
            format!("[{}]", self.endpoint)
        } else {
            self.endpoint.clone()
        };
        let tls = json!({ "insecure": !self.verify_ssl });
        let (kind, mut value) = match self.siem_type.as_str() {
            "splunk" => {
                let mut v = json!({
                    "url": format!("{scheme}://{host}:{}", self.port.unwrap_or(8088)),
                    "token": self.auth_token.clone().unwrap_or_default(),
                    "sourcetype": self.source_type.clone().unwrap_or_else(|| "_json".into()),
                    "tls": tls,
                });
                if let Some(index) = &self.index_name {
                    v["index"] = json!(index);
                }
                ("splunk_hec", v)
            }
            "elastic" | "elasticsearch" | "opensearch" => {
                let mut v = json!({
                    "url": format!("{scheme}://{host}:{}", self.port.unwrap_or(9200)),
                    "index": self.index_name.clone().unwrap_or_else(|| "sluice-%YYYY.%MM.%DD".into()),
                    "tls": tls,
                });
                match self.auth_type.as_deref() {
                    Some("basic") => {
                        v["username"] = json!(self.username.clone().unwrap_or_default());
                        v["password"] = json!(self.password.clone().unwrap_or_default());
                    }
                    Some("apikey" | "api_key" | "token") => v["api_key"] = json!(self.auth_token.clone().unwrap_or_default()),
                    None | Some("none") => {}
                    Some(other) => errors.push(ConfigError::at("auth_type", format!("`{other}`: use basic or apikey for elastic"))),
                }
                ("elasticsearch", v)
            }
            "syslog" | "cef" | "qradar" => {
                let transport = match self.auth_type.as_deref() {
                    Some(t @ ("udp" | "tcp" | "tls")) => t,
                    None if self.use_ssl => "tls",
                    None => "udp",
                    Some(other) => {
                        errors.push(ConfigError::at("auth_type", format!("`{other}`: for syslog use udp, tcp or tls")));
                        "udp"
                    }
                };
                let port = self.port.unwrap_or(if transport == "tls" { 6514 } else { 514 });
                let format = if self.leef || self.siem_type == "qradar" {
                    "leef"
                } else if self.siem_type == "cef" {
                    "cef"
                } else {
                    "text"
                };
                let mut v = json!({
                    "address": format!("{host}:{port}"),
                    "transport": transport,
                    "format": format,
                    "tls": {"insecure": !self.verify_ssl},
                });
                if let Some(f) = &self.facility {
                    v["facility"] = json!(f);
                }
                ("syslog", v)
            }
            other => {
                errors.push(ConfigError::at("siem_type", format!("`{other}`: use splunk, elastic, syslog, cef or qradar")));
                return Err(errors);
            }
        };
        let mut kinds = Vec::new();
        for t in &self.enabled_event_types {
            match event_kind(t) {
                Some(k) => kinds.push(k),
                None => errors.push(ConfigError::at("enabled_event_types", format!("unknown event type `{t}`"))),
            }
        }
        if self.batch_size == 0 {
            errors.push(ConfigError::at("batch_size", "must be at least 1"));
        }
        let mut filter = json!({ "kinds": kinds });
        if let Some(min) = &self.min_severity {
            filter["min_severity"] = json!(min);
        }
        if let Some(map) = value.as_object_mut() {
            map.insert("batch".into(), json!({"max_events": self.batch_size.max(1), "timeout": self.batch_interval_seconds}));
            map.insert("filter".into(), filter);
        }
        let policy = SinkPolicy::take(&mut value, "", &mut errors);
        let settings = <dyn SinkSettings>::parse(kind, value, "", &mut errors);
        for e in &mut errors {
            // Paths of the translated sink are the connection's fields.
            e.path = e.path.trim_start_matches('.').to_string();
        }
        match settings {
            Some(settings) if errors.is_empty() => Ok(SinkConfig { name: id.to_string(), settings, policy }),
            _ => Err(errors),
        }
    }

    /// What the API returns: the connection without its secrets, with its id.
    pub fn public(&self, id: &str) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(map) = v.as_object_mut() {
            map.insert("connection_id".into(), json!(id));
            map.insert("has_auth_token".into(), json!(self.auth_token.is_some()));
            map.insert("has_password".into(), json!(self.password.is_some()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(json: Value) -> Connection {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn seed_connections_become_sinks() {
        let splunk = conn(
            json!({"name": "s", "siem_type": "splunk", "endpoint": "splunk.local", "auth_token": "T", "index_name": "zt", "batch_size": 50, "enabled_event_types": ["anomaly", "workflow_execution"]}),
        );
        let sink = splunk.to_sink("SIEM-CONN-1").unwrap();
        let c = sink.settings.downcast_ref::<crate::sinks::splunk_hec::HecConfig>().expect("a splunk_hec sink");
        assert_eq!((c.url.as_str(), c.index.as_deref(), c.token.expose()), ("https://splunk.local:8088", Some("zt"), "T"));
        assert_eq!(sink.policy.batch.max_events.get(), 50);
        assert_eq!(sink.policy.filter.kinds.len(), 2);

        let syslog = conn(
            json!({"name": "q", "siem_type": "qradar", "endpoint": "10.0.0.5", "auth_type": "tcp", "use_ssl": false, "facility": "local4"}),
        );
        let sink = syslog.to_sink("x").unwrap();
        let c = sink.settings.downcast_ref::<crate::sinks::syslog::SyslogConfig>().expect("a syslog sink");
        assert_eq!(c.address, "10.0.0.5:514");
        assert_eq!(c.format, crate::encode::Format::Leef);
    }

    #[test]
    fn errors_name_the_connection_fields_and_secrets_are_never_returned() {
        let bad = conn(
            json!({"name": "b", "siem_type": "syslog", "endpoint": "h", "auth_type": "carrier-pigeon", "enabled_event_types": ["nope"]}),
        );
        let errs: Vec<String> = bad.to_sink("x").unwrap_err().iter().map(|e| e.to_string()).collect();
        assert!(errs.iter().any(|e| e.starts_with("auth_type:")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("enabled_event_types:")), "{errs:?}");
        let secret = conn(
            json!({"name": "s", "siem_type": "elastic", "endpoint": "es", "auth_type": "basic", "username": "u", "password": "hunter2"}),
        );
        let public = secret.public("id").to_string();
        assert!(!public.contains("hunter2"), "{public}");
        assert!(public.contains("\"has_password\":true"));
    }
}
