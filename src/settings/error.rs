//! Config errors with the YAML path they are at, and typed parsing that records them. Every
//! component's settings parse through here, so `sluice check` reports all problems at once, each
//! with its exact path (`tenants[0].sources[1].intervall: unknown field, expected one of …`).

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// One problem found in the file, with the YAML path it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { write!(f, "{}", self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

impl ConfigError {
    pub fn root(message: impl Into<String>) -> Self {
        ConfigError { path: String::new(), message: message.into() }
    }
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { path: path.into(), message: message.into() }
    }
}

/// Deserializes `value` into `T`, recording any error with its full YAML path.
pub fn parse_at<T: DeserializeOwned>(value: Value, prefix: &str, errors: &mut Vec<ConfigError>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let mut path = join_path(prefix, if inner == "." { "" } else { &inner });
            let mut message = e.into_inner().to_string();
            // "unknown field `x`, expected …": the path already ends in `x`; don't say it twice.
            if let Some(rest) = message.strip_prefix("unknown field `")
                && let Some((field, tail)) = rest.split_once('`')
            {
                if !path.ends_with(field) {
                    path = join_path(&path, field);
                }
                message = format!("unknown field{tail}");
            }
            errors.push(ConfigError { path, message });
            None
        }
    }
}

fn join_path(prefix: &str, inner: &str) -> String {
    match (prefix.is_empty(), inner.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => inner.to_string(),
        (false, false) if inner.starts_with('[') => format!("{prefix}{inner}"),
        (false, false) => format!("{prefix}.{inner}"),
    }
}

/// The names of the variants a `type:` accepts, for error messages.
pub fn unknown_type(path: &str, what: &str, kind: &str, known: &[&str]) -> ConfigError {
    ConfigError::at(format!("{path}.type"), format!("unknown {what} type `{kind}`, expected one of: {}", known.join(", ")))
}

/// Records what a settings struct's own checks found, under `path`; true when nothing was.
pub fn report(problems: Vec<(&'static str, String)>, path: &str, errors: &mut Vec<ConfigError>) -> bool {
    let clean = problems.is_empty();
    for (field, reason) in problems {
        let at = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
        errors.push(ConfigError::at(at, reason));
    }
    clean
}

/// Parses one `type:`'s settings at a path, recording errors: what a registry entry holds.
pub type ParseFn<T> = fn(Value, &str, &mut Vec<ConfigError>) -> Option<T>;
