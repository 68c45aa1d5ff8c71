//! The built-in collectors (`type: crowdstrike`, `tenable`, `okta`, `snyk`, `knowbe4`, and the
//! event streams `okta_logs` and `crowdstrike_alerts`): each is
//! an `http_pull` definition (`definition.yml` in the vendor's folder) plus the parameters a user
//! gives it — credentials, base URL — by name in the config or by the original data collectors'
//! environment variables (`sluice collect`).
//!
//! A definition is ordinary `http_pull` YAML in which `${name}` stands for a parameter. A value
//! that is exactly `${name}` of an unset optional parameter is left out (an optional form field
//! such as CrowdStrike's `member_cid`).

pub mod aws_securityhub;
pub mod crowdstrike;
pub mod crowdstrike_alerts;
pub mod graph_security;
pub mod kismet;
pub mod knowbe4;
pub mod okta;
pub mod okta_logs;
pub mod prometheus;
pub mod snyk;
pub mod tenable;
pub mod zabbix;

use std::collections::BTreeMap;
use std::marker::PhantomData;

use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::http_pull::HttpPullConfig;
use super::{DataSetReport, SourceContext, SourceSettings};

/// One built-in collector.
pub struct Spec {
    /// The `type:` name.
    pub name: &'static str,
    pub title: &'static str,
    /// The vendor's API documentation.
    pub link: &'static str,
    /// The `http_pull` definition with `${param}` placeholders.
    pub definition: &'static str,
    pub params: &'static [Param],
}

/// A parameter of a built-in collector.
pub struct Param {
    /// Its key in the config.
    pub name: &'static str,
    /// The environment variable the original data collectors read it from.
    pub env: &'static str,
    /// `None`: required.
    pub default: Option<&'static str>,
    pub secret: bool,
    /// A bare host name is given `https://` (`OKTA_DOMAIN=acme.okta.com`).
    pub url: bool,
    pub help: &'static str,
}

/// The original data collectors' snapshots, which `sluice collect` runs from the environment.
pub static COLLECTORS: &[&Spec] = &[&crowdstrike::SPEC, &tenable::SPEC, &okta::SPEC, &snyk::SPEC, &knowbe4::SPEC];

/// Event streams, for the daemon (their events go to SIEMs, not to the metrics files).
pub static STREAMS: &[&Spec] = &[
    &okta_logs::SPEC,
    &crowdstrike_alerts::SPEC,
    &graph_security::SPEC,
    &aws_securityhub::SPEC,
    &prometheus::SPEC,
    &kismet::SPEC,
    &zabbix::SPEC,
];

/// Ties a Rust type to a [`Spec`], so each collector registers as a source type of its own.
pub trait Vendor: std::fmt::Debug + Send + Sync + 'static {
    const SPEC: &'static Spec;
}

/// The settings of a built-in collector: its parameters and the `http_pull` definition they
/// complete.
#[derive(Debug)]
pub struct Builtin<V> {
    pub pull: HttpPullConfig,
    vendor: PhantomData<V>,
}

impl<V> PartialEq for Builtin<V> {
    fn eq(&self, other: &Self) -> bool {
        self.pull == other.pull
    }
}

/// Keys of a built-in's settings that go to the definition as they are, not as parameters.
const PASSED_THROUGH: &[&str] = &["interval", "cron", "rate_limit_per_minute", "request_timeout", "tls", "retry"];

impl<'de, V: Vendor> Deserialize<'de> for Builtin<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        let pull = build(V::SPEC, map).map_err(serde::de::Error::custom)?;
        Ok(Builtin { pull, vendor: PhantomData })
    }
}

impl<V: Vendor> SourceSettings for Builtin<V> {
    fn problems(&self) -> Vec<(&'static str, String)> {
        self.pull.check()
    }

    fn run(&self, ctx: SourceContext) -> BoxFuture<'static, anyhow::Result<()>> {
        self.pull.run(ctx)
    }

    fn collect_once(&self, ctx: SourceContext) -> Option<BoxFuture<'static, Vec<DataSetReport>>> {
        self.pull.collect_once(ctx)
    }

    fn preview(&self, ctx: SourceContext, dataset: Option<String>, records: usize) -> Option<BoxFuture<'static, anyhow::Result<()>>> {
        self.pull.preview(ctx, dataset, records)
    }
}

/// A built-in collector from the environment (`sluice collect`), as the original data
/// collectors are configured: `None` when a required variable is unset.
pub fn from_env(spec: &Spec, env: &dyn Fn(&str) -> Option<String>) -> Option<Result<HttpPullConfig, String>> {
    let mut map = Map::new();
    for p in spec.params {
        match env(p.env).filter(|v| !v.is_empty()) {
            Some(v) => {
                map.insert(p.name.to_string(), Value::String(v));
            }
            None if p.default.is_none() => return None,
            None => {}
        }
    }
    Some(build(spec, map))
}

/// Completes the definition with the given settings.
fn build(spec: &Spec, mut map: Map<String, Value>) -> Result<HttpPullConfig, String> {
    let datasets: Option<Vec<String>> = match map.remove("datasets") {
        None => None,
        Some(v) => Some(serde_json::from_value(v).map_err(|e| format!("datasets: expected a list of data set tags ({e})"))?),
    };
    let passed: Vec<(String, Value)> = PASSED_THROUGH.iter().filter_map(|k| map.remove(*k).map(|v| (k.to_string(), v))).collect();
    let mut params = BTreeMap::new();
    for (key, value) in map {
        let Some(param) = spec.params.iter().find(|p| p.name == key) else {
            let mut known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            known.extend(PASSED_THROUGH);
            known.push("datasets");
            return Err(format!("unknown field `{key}`, expected one of {}", known.join(", ")));
        };
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => return Err(format!("{key}: expected a string, found {other}")),
        };
        params.insert(param.name.to_string(), if param.url { with_scheme(&text) } else { text });
    }
    for p in spec.params {
        match (params.contains_key(p.name), p.default) {
            (true, _) => {}
            (false, Some(default)) => {
                params.insert(p.name.to_string(), default.to_string());
            }
            (false, None) => return Err(format!("missing field `{}` ({}; environment variable {})", p.name, p.help, p.env)),
        }
    }
    let definition: Value = serde_saphyr::from_str(spec.definition).map_err(|e| format!("built-in definition of {}: {e}", spec.name))?;
    let mut definition = substitute(definition, &params).unwrap_or(Value::Null);
    let object = definition.as_object_mut().ok_or("a definition is a mapping")?;
    for (key, value) in passed {
        object.insert(key, value);
    }
    if let Some(wanted) = &datasets {
        let all = object.get_mut("datasets").and_then(Value::as_array_mut).ok_or("a definition has datasets")?;
        let known: Vec<String> = all.iter().filter_map(|d| d.get("tag").and_then(Value::as_str).map(str::to_string)).collect();
        if let Some(unknown) = wanted.iter().find(|w| !known.contains(w)) {
            return Err(format!("datasets: `{unknown}` is not a data set of {}; known: {}", spec.name, known.join(", ")));
        }
        all.retain(|d| d.get("tag").and_then(Value::as_str).is_some_and(|t| wanted.iter().any(|w| w == t)));
    }
    serde_json::from_value(definition).map_err(|e| e.to_string())
}

/// Replaces `${name}` in every string. Returns `None` for a string that is exactly one
/// placeholder whose value is empty, and drops such members from objects.
fn substitute(value: Value, params: &BTreeMap<String, String>) -> Option<Value> {
    match value {
        Value::String(s) => {
            let mut out = s.clone();
            for (name, v) in params {
                out = out.replace(&format!("${{{name}}}"), v);
            }
            let whole_and_empty = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1 && out.is_empty();
            (!whole_and_empty).then_some(Value::String(out))
        }
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(|v| substitute(v, params)).collect())),
        Value::Object(map) => Some(Value::Object(map.into_iter().filter_map(|(k, v)| substitute(v, params).map(|v| (k, v))).collect())),
        other => Some(other),
    }
}

fn with_scheme(url: &str) -> String {
    if url.contains("://") { url.trim_end_matches('/').to_string() } else { format!("https://{}", url.trim_end_matches('/')) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_builds_with_its_parameters() {
        for spec in COLLECTORS.iter().chain(STREAMS) {
            let env = |var: &str| {
                let value =
                    if var.ends_with("EXISTING_AT_START") { "skip".to_string() } else { format!("value-of-{var}").replace('_', "-") };
                Some(value).filter(|_| spec.params.iter().any(|p| p.env == var))
            };
            let pull = from_env(spec, &env).expect("all variables set").unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            assert!(pull.check().is_empty(), "{}: {:?}", spec.name, pull.check());
            assert!(!pull.datasets.is_empty());
        }
    }

    #[test]
    fn unknown_fields_and_data_sets_are_named() {
        let map = |v: Value| v.as_object().unwrap().clone();
        let err = build(&crowdstrike::SPEC, map(serde_json::json!({"client_id": "a", "client_secret": "b", "clientid": 1}))).err().unwrap();
        assert!(err.contains("unknown field `clientid`"), "{err}");
        let err =
            build(&crowdstrike::SPEC, map(serde_json::json!({"client_id": "a", "client_secret": "b", "datasets": ["crowdstrike_hostz"]})))
                .err()
                .unwrap();
        assert!(err.contains("crowdstrike_hostz") && err.contains("crowdstrike_hosts"), "{err}");
        let err = build(&crowdstrike::SPEC, map(serde_json::json!({"client_id": "a"}))).err().unwrap();
        assert!(err.contains("client_secret") && err.contains("FALCON_SECRET"), "{err}");
    }

    #[test]
    fn empty_optional_parameters_leave_their_member_out() {
        let params = BTreeMap::from([("a".to_string(), String::new()), ("b".to_string(), "x".to_string())]);
        let v = substitute(serde_json::json!({"m": "${a}", "n": "${b}/${a}", "k": 1}), &params).unwrap();
        assert_eq!(v, serde_json::json!({"n": "x/", "k": 1}));
    }
}
