//! The YAML configuration: loading, secret expansion, validation with exact error paths.
//!
//! Loading goes YAML text → `serde_json::Value` → `${…}` expansion → typed structs. Each source
//! and sink is deserialized on its own with its path as prefix, so every error names the exact key
//! (`tenants[0].sources[1].intervall: unknown field, expected one of …`) and `sluice check` can
//! report all of them at once.

pub mod expand;
mod legacy;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::names;
use crate::settings::duration;
use crate::settings::error::{ConfigError, parse_at};
use crate::sinks::SinkSettings;
use crate::sources::SourceSettings;

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub state_dir: PathBuf,
    pub store: StoreKind,
    pub shutdown_timeout: Duration,
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The REST API, when configured.
    pub api: Option<crate::api::config::ApiConfig>,
    pub log_file: Option<crate::telemetry::LogFileConfig>,
    pub sinks: BTreeMap<String, SinkConfig>,
    pub tenants: Vec<TenantConfig>,
    /// Where the file was read from; relative paths in it are relative to the process's
    /// working directory, as in the original tools.
    pub source_path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    pub name: String,
    pub sources: Vec<SourceConfig>,
    pub sinks: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub settings: std::sync::Arc<dyn SourceSettings>,
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    pub settings: std::sync::Arc<dyn SinkSettings>,
    /// `batch`, `retry`, `filter`, `outbox`, `health`: the same for every type.
    pub policy: crate::sinks::policy::SinkPolicy,
}

// By hand: a derived `PartialEq` cannot compare `Arc<dyn …>` fields.
impl PartialEq for SourceConfig {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && *self.settings == *other.settings
    }
}

impl PartialEq for SinkConfig {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && *self.settings == *other.settings && self.policy == other.policy
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} error(s)", self.file.display(), self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default = "default_store")]
    store: StoreKind,
    #[serde(default = "default_shutdown_timeout", with = "duration")]
    shutdown_timeout: Duration,
    #[serde(default)]
    metrics: Option<RawMetrics>,
    #[serde(default)]
    log: Option<crate::telemetry::LogFileConfig>,
    #[serde(default)]
    api: Option<Value>,
    #[serde(default)]
    sinks: Map<String, Value>,
    #[serde(default)]
    tenants: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: std::net::SocketAddr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    name: String,
    #[serde(default)]
    sources: Vec<Value>,
    #[serde(default)]
    sinks: Vec<String>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("./data/state")
}
fn default_store() -> StoreKind {
    StoreKind::Sqlite
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Config {
    /// What is valid but most likely not meant: a config that would collect nothing.
    pub fn warnings(&self) -> Vec<String> {
        let sources: usize = self.tenants.iter().map(|t| t.sources.len()).sum();
        if self.tenants.is_empty() {
            vec!["no tenants: sluice would run and collect nothing".into()]
        } else if sources == 0 && self.api.is_none() {
            vec!["no sources and no `api:`: sluice would run and collect nothing".into()]
        } else {
            Vec::new()
        }
    }

    /// Reads, expands and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors { file: path.to_path_buf(), errors };
        let text = std::fs::read_to_string(path).map_err(|e| fail(vec![ConfigError::root(format!("cannot read file: {e}"))]))?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base_dir, path).map_err(fail)
    }

    /// Parses config text. `base_dir` resolves `${file:relative}` secrets.
    pub fn parse(text: &str, base_dir: &Path, source_path: &Path) -> Result<Config, Vec<ConfigError>> {
        // YAML 1.2 booleans: a secret such as `y` or `no` stays a string.
        let options = serde_saphyr::options! { strict_booleans: true };
        let mut value: Value =
            serde_saphyr::from_str_with_options(text, options).map_err(|e| vec![ConfigError::root(format!("invalid YAML: {e}"))])?;
        if value.is_null() {
            value = Value::Object(Map::new());
        }
        let mut errors = Vec::new();
        expand_all(&mut value, base_dir, &mut String::new(), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let is_legacy = legacy::is_legacy(&value);
        if is_legacy {
            value = legacy::translate(value, source_path)?;
        }
        let mut errors = Vec::new();
        let config = build(value, source_path, &mut errors);
        if is_legacy {
            errors.iter_mut().for_each(legacy::rename_path);
        }
        match config {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }
}

fn build(value: Value, source_path: &Path, errors: &mut Vec<ConfigError>) -> Option<Config> {
    let raw: RawConfig = parse_at(value, "", errors)?;
    let api = raw.api.and_then(|v| {
        let config: crate::api::config::ApiConfig = parse_at(v, "api", errors)?;
        let problems = config.problems();
        for (field, reason) in &problems {
            errors.push(ConfigError::at(format!("api.{field}"), reason.clone()));
        }
        problems.is_empty().then_some(config)
    });

    let mut sinks = BTreeMap::new();
    for (name, value) in raw.sinks {
        let path = format!("sinks.{name}");
        if let Err(e) = names::validate(&name) {
            errors.push(ConfigError::at(&path, format!("invalid sink name: {e}")));
        }
        let mut value = value;
        let mut policy = crate::sinks::policy::SinkPolicy::take(&mut value, &path, errors);
        if let Some(settings) = typed_at(value, &path, errors, <dyn SinkSettings>::parse) {
            settings.adjust_policy(&mut policy);
            sinks.insert(name.clone(), SinkConfig { name, settings, policy });
        }
    }

    let mut tenants = Vec::new();
    let mut tenant_names = HashSet::new();
    for (i, value) in raw.tenants.into_iter().enumerate() {
        let path = format!("tenants[{i}]");
        let Some(raw_tenant) = parse_at::<RawTenant>(value, &path, errors) else { continue };
        if let Err(e) = names::validate(&raw_tenant.name) {
            errors.push(ConfigError::at(format!("{path}.name"), format!("invalid tenant name: {e}")));
        }
        if !tenant_names.insert(raw_tenant.name.clone()) {
            errors.push(ConfigError::at(format!("{path}.name"), format!("duplicate tenant `{}`", raw_tenant.name)));
        }
        let mut sources = Vec::new();
        let mut source_names = HashSet::new();
        for (j, value) in raw_tenant.sources.into_iter().enumerate() {
            let spath = format!("{path}.sources[{j}]");
            let name = match value.get("name").and_then(Value::as_str) {
                Some(n) => n.to_string(),
                None => {
                    errors.push(ConfigError::at(&spath, "missing field `name`"));
                    continue;
                }
            };
            if let Err(e) = names::validate(&name) {
                errors.push(ConfigError::at(format!("{spath}.name"), format!("invalid source name: {e}")));
            }
            if !source_names.insert(name.clone()) {
                errors.push(ConfigError::at(format!("{spath}.name"), format!("duplicate source `{name}`")));
            }
            let value = without_key(value, "name");
            if let Some(settings) = typed_at(value, &spath, errors, <dyn SourceSettings>::parse) {
                sources.push(SourceConfig { name, settings });
            }
        }
        for (k, sink) in raw_tenant.sinks.iter().enumerate() {
            if !sinks.contains_key(sink) {
                let known: Vec<_> = sinks.keys().map(String::as_str).collect();
                errors.push(ConfigError::at(
                    format!("{path}.sinks[{k}]"),
                    format!("unknown sink `{sink}`; defined sinks: [{}]", known.join(", ")),
                ));
            }
        }
        if raw_tenant.sinks.is_empty() && !sources.is_empty() {
            errors.push(ConfigError::at(format!("{path}.sinks"), "a tenant with sources needs at least one sink"));
        }
        tenants.push(TenantConfig { name: raw_tenant.name, sources, sinks: raw_tenant.sinks });
    }

    Some(Config {
        state_dir: raw.state_dir,
        store: raw.store,
        shutdown_timeout: raw.shutdown_timeout,
        metrics_listen: raw.metrics.map(|m| m.listen),
        api,
        log_file: raw.log,
        sinks,
        tenants,
        source_path: source_path.to_path_buf(),
    })
}

/// Deserializes a `type:`-tagged section: removes `type` and hands the rest to `parse`, which
/// calls [`parse_at`] with the variant's struct.
fn typed_at<T>(
    value: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
    parse: fn(&str, Value, &str, &mut Vec<ConfigError>) -> Option<T>,
) -> Option<T> {
    if !value.is_object() {
        errors.push(ConfigError::at(path, "expected a mapping"));
        return None;
    }
    let Some(kind) = value.get("type").and_then(Value::as_str).map(str::to_string) else {
        errors.push(ConfigError::at(path, "missing field `type`"));
        return None;
    };
    parse(&kind, without_key(value, "type"), path, errors)
}

fn without_key(mut value: Value, key: &str) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.remove(key);
    }
    value
}

/// Expands `${…}` in every string. A string that was one whole reference and expands to a number
/// or boolean becomes that scalar, so `interval: ${POLL_SECONDS}` works.
fn expand_all(value: &mut Value, base_dir: &Path, path: &mut String, errors: &mut Vec<ConfigError>) {
    match value {
        Value::String(s) if s.contains('$') => match expand::expand(s, base_dir) {
            Ok(expanded) => {
                let whole_reference = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
                *value = match (whole_reference, serde_json::from_str::<Value>(&expanded)) {
                    (true, Ok(v @ (Value::Number(_) | Value::Bool(_)))) => v,
                    _ => Value::String(expanded),
                };
            }
            Err(e) => errors.push(ConfigError::at(path.clone(), e)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_all(item, base_dir, path, errors);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                expand_all(item, base_dir, path, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
