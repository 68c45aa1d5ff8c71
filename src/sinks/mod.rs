//! Sinks: where events go. One folder per kind of sink, holding its config and code.

pub mod file;
pub mod idmefv2_http;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::config::{ConfigError, parse_at, unknown_type};
use crate::pipeline::Batch;

/// The `type:`-specific part of a sink's config.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkSettings {
    File(file::FileSinkConfig),
    IdmefHttp(idmefv2_http::IdmefHttpConfig),
}

impl SinkSettings {
    pub const TYPES: &[&str] = &["file", "idmefv2_http"];

    pub fn parse(kind: &str, value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Self> {
        match kind {
            "file" => parse_at(value, path, errors).map(SinkSettings::File),
            "idmefv2_http" => {
                let config: idmefv2_http::IdmefHttpConfig = parse_at(value, path, errors)?;
                let problems = config.problems();
                for (field, reason) in &problems {
                    errors.push(ConfigError::at(format!("{path}.{field}"), reason.clone()));
                }
                problems.is_empty().then_some(SinkSettings::IdmefHttp(config))
            }
            other => {
                errors.push(unknown_type(path, "sink", other, Self::TYPES));
                None
            }
        }
    }

    /// Builds the sink that delivers events for this config.
    pub fn build(&self, name: &str, store: &crate::store::Store) -> anyhow::Result<Box<dyn Sink>> {
        Ok(match self {
            SinkSettings::File(c) => Box::new(file::FileSink::new(name, c.clone())?),
            SinkSettings::IdmefHttp(c) => Box::new(idmefv2_http::IdmefHttpSink::new(name, c.clone(), store.clone())?),
        })
    }
}

/// A destination. `write` returns once the events of all batches are durable at the destination
/// (a file sink has fsynced them); only then may the pipeline forget them. Several batches come
/// at once when they queued up: one write (one fsync) then serves them all.
pub trait Sink: Send {
    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<()>>;
}
