//! Sinks: where events go. One folder per kind of sink, holding its config and code.

pub mod file;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::config::{ConfigError, parse_at, unknown_type};
use crate::pipeline::Batch;

/// The `type:`-specific part of a sink's config.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkSettings {
    File(file::FileSinkConfig),
}

impl SinkSettings {
    pub const TYPES: &[&str] = &["file"];

    pub fn parse(kind: &str, value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Self> {
        match kind {
            "file" => parse_at(value, path, errors).map(SinkSettings::File),
            other => {
                errors.push(unknown_type(path, "sink", other, Self::TYPES));
                None
            }
        }
    }

    /// Builds the sink that delivers events for this config.
    pub fn build(&self, name: &str) -> anyhow::Result<Box<dyn Sink>> {
        Ok(match self {
            SinkSettings::File(c) => Box::new(file::FileSink::new(name, c.clone())?),
        })
    }
}

/// A destination. `write` returns once the events of all batches are durable at the destination
/// (a file sink has fsynced them); only then may the pipeline forget them. Several batches come
/// at once when they queued up: one write (one fsync) then serves them all.
pub trait Sink: Send {
    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<()>>;
}
