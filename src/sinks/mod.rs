//! Sinks: where events go. One folder per kind of sink, holding its config and code; the
//! settings every sink shares (`batch`, `retry`, `filter`, `outbox`, `health`) are in
//! [`policy`], health and statistics in [`status`].

pub mod elasticsearch;
pub mod file;
pub mod http;
pub mod idmefv2_http;
pub mod policy;
pub mod splunk_hec;
pub mod status;
pub mod syslog;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::config::{ConfigError, parse_at, unknown_type};
use crate::pipeline::Batch;
use crate::store::Store;
use policy::SinkPolicy;

/// The `type:`-specific part of a sink's config.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkSettings {
    File(file::FileSinkConfig),
    IdmefHttp(idmefv2_http::IdmefHttpConfig),
    SplunkHec(splunk_hec::HecConfig),
    Elasticsearch(elasticsearch::EsConfig),
    Syslog(syslog::SyslogConfig),
}

impl SinkSettings {
    pub const TYPES: &[&str] = &["file", "idmefv2_http", "splunk_hec", "elasticsearch", "syslog"];

    pub fn parse(kind: &str, value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Self> {
        /// Parses the type's struct and reports what its `problems()` finds, at their paths.
        fn checked<T: serde::de::DeserializeOwned>(
            value: Value,
            path: &str,
            errors: &mut Vec<ConfigError>,
            problems: fn(&T) -> Vec<(&'static str, String)>,
        ) -> Option<T> {
            let config: T = parse_at(value, path, errors)?;
            let found = problems(&config);
            for (field, reason) in &found {
                errors.push(ConfigError::at(format!("{path}.{field}"), reason.clone()));
            }
            found.is_empty().then_some(config)
        }
        match kind {
            "file" => parse_at(value, path, errors).map(SinkSettings::File),
            "idmefv2_http" => checked(value, path, errors, idmefv2_http::IdmefHttpConfig::problems).map(SinkSettings::IdmefHttp),
            "splunk_hec" => checked(value, path, errors, splunk_hec::HecConfig::problems).map(SinkSettings::SplunkHec),
            "elasticsearch" => checked(value, path, errors, elasticsearch::EsConfig::problems).map(SinkSettings::Elasticsearch),
            "syslog" => checked(value, path, errors, syslog::SyslogConfig::problems).map(SinkSettings::Syslog),
            other => {
                errors.push(unknown_type(path, "sink", other, Self::TYPES));
                None
            }
        }
    }

    /// Builds the sink that delivers events for this config.
    pub fn build(&self, name: &str, store: &Store, policy: &SinkPolicy) -> anyhow::Result<Box<dyn Sink>> {
        let ctx = SinkContext { name: name.to_string(), store: store.clone(), policy: policy.clone() };
        Ok(match self {
            SinkSettings::File(c) => Box::new(file::FileSink::new(name, c.clone())?),
            SinkSettings::IdmefHttp(c) => Box::new(idmefv2_http::IdmefHttpSink::new(c.clone(), ctx)?),
            SinkSettings::SplunkHec(c) => Box::new(splunk_hec::HecSink::new(c.clone(), ctx)?),
            SinkSettings::Elasticsearch(c) => Box::new(elasticsearch::EsSink::new(c.clone(), ctx)?),
            SinkSettings::Syslog(c) => Box::new(syslog::SyslogSink::new(c.clone(), ctx)?),
        })
    }
}

/// What a sink gets besides its own settings.
#[derive(Clone)]
pub struct SinkContext {
    pub name: String,
    pub store: Store,
    pub policy: SinkPolicy,
}

impl SinkContext {
    /// Records an event the destination refused for good; it counts as handled.
    pub async fn dead_letter(&self, event: &crate::model::Event, reason: &str, written: &mut Written) -> anyhow::Result<()> {
        tracing::warn!(sink = %self.name, event = %event.id, reason, "event refused; dead-lettered");
        self.store.dead_letter(&self.name, event, reason).await?;
        written.dead_lettered += 1;
        written.dead_letter_reason = Some(reason.to_string());
        Ok(())
    }
}

/// Encodes every event of `batches`, in order, on two threads when there are many: turning
/// events into documents (normalizing them first) is most of what a sink costs.
pub async fn encode_all<T, F>(batches: &[Batch], encode: Arc<F>) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(&crate::model::Event) -> T + Send + Sync + 'static,
{
    let total: usize = batches.iter().map(|b| b.len()).sum();
    if total < 256 {
        return Ok(batches.iter().flat_map(|b| b.iter()).map(|e| encode(e)).collect());
    }
    let half = total / 2;
    let (first_batches, first_encode) = (batches.to_vec(), encode.clone());
    let first = tokio::task::spawn_blocking(move || {
        first_batches.iter().flat_map(|b| b.iter()).take(half).map(|e| first_encode(e)).collect::<Vec<T>>()
    });
    let second_batches = batches.to_vec();
    let second =
        tokio::task::spawn_blocking(move || second_batches.iter().flat_map(|b| b.iter()).skip(half).map(|e| encode(e)).collect::<Vec<T>>());
    let mut out = first.await?;
    out.extend(second.await?);
    Ok(out)
}

/// What a successful write did besides delivering.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Written {
    /// Events refused for good and put in the dead-letter list.
    pub dead_lettered: u64,
    pub dead_letter_reason: Option<String>,
    /// Messages cut to fit (syslog over UDP).
    pub truncated: u64,
}

/// A destination. `write` returns once every event of the batches is durable at the
/// destination (a file sink has fsynced them) or in the dead-letter list; only then may the
/// pipeline forget them. Several batches come at once when they queued up: one write (one
/// fsync, few requests) then serves them all.
pub trait Sink: Send {
    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>>;

    /// An active check that writes nothing (a health endpoint, a handshake).
    fn check(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
