//! Sinks: where events go. One folder per kind of sink, holding its settings and code, registered
//! in [`SINK_TYPES`]; the settings every sink shares (`batch`, `retry`, `filter`, `outbox`, `health`) are in
//! [`policy`], health and statistics in [`status`].

pub mod elasticsearch;
pub mod file;
pub mod http;
pub mod idmefv2_http;
pub mod mongodb;
pub mod policy;
pub mod postgres;
pub mod s3;
pub mod splunk_hec;
pub mod status;
pub mod stdout;
pub mod syslog;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::event::Batch;
use crate::settings::AnySettings;
use crate::settings::error::{ConfigError, ParseFn, parse_at, report, unknown_type};
use crate::snapshot::Snapshot;
use crate::store::Store;
use policy::SinkPolicy;

/// Every sink type, by its `type:` name. A new sink is a folder with its settings and code, and
/// one line here.
pub static SINK_TYPES: &[SinkType] = &[
    SinkType::new::<file::FileSinkConfig>("file"),
    SinkType::new::<idmefv2_http::IdmefHttpConfig>("idmefv2_http"),
    SinkType::new::<splunk_hec::HecConfig>("splunk_hec"),
    SinkType::new::<elasticsearch::EsConfig>("elasticsearch"),
    SinkType::new::<syslog::SyslogConfig>("syslog"),
    SinkType::new::<stdout::StdoutConfig>("stdout"),
    SinkType::new::<postgres::PostgresConfig>("postgres"),
    SinkType::new::<s3::S3Config>("s3"),
    SinkType::new::<mongodb::MongoConfig>("mongodb"),
];

/// The `type:`-specific settings of a sink: what its folder's `config.rs` deserializes.
pub trait SinkSettings: AnySettings + std::fmt::Debug + Send + Sync {
    /// Problems serde cannot see (a missing file, options that exclude each other), each with
    /// the key it is at.
    fn problems(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Builds the sink that delivers events for these settings.
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>>;

    /// Settings of this type that stand for common ones (an object's `max_age` is the sink's
    /// `batch.timeout`), applied once both are read.
    fn adjust_policy(&self, _policy: &mut SinkPolicy) {}
}

impl PartialEq for dyn SinkSettings {
    fn eq(&self, other: &Self) -> bool {
        self.eq_any(other.as_any())
    }
}

impl dyn SinkSettings {
    /// Parses `value` as the settings of sink type `kind`, recording errors at `path`.
    pub fn parse(kind: &str, value: Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Arc<dyn SinkSettings>> {
        match SINK_TYPES.iter().find(|t| t.name == kind) {
            Some(t) => (t.parse)(value, path, errors),
            None => {
                let known: Vec<_> = SINK_TYPES.iter().map(|t| t.name).collect();
                errors.push(unknown_type(path, "sink", kind, &known));
                None
            }
        }
    }

    /// The settings as their concrete type, if they are of it.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }

    /// Builds the sink named `name`.
    pub fn start(&self, name: &str, store: &Store, policy: &SinkPolicy) -> anyhow::Result<Box<dyn Sink>> {
        self.build(SinkContext { name: name.to_string(), store: store.clone(), policy: policy.clone() })
    }
}

/// One entry of [`SINK_TYPES`].
pub struct SinkType {
    pub name: &'static str,
    parse: ParseFn<Arc<dyn SinkSettings>>,
}

impl SinkType {
    pub const fn new<T: SinkSettings + DeserializeOwned>(name: &'static str) -> SinkType {
        SinkType { name, parse: parse_settings::<T> }
    }
}

fn parse_settings<T: SinkSettings + DeserializeOwned>(
    value: Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Arc<dyn SinkSettings>> {
    let settings: T = parse_at(value, path, errors)?;
    report(settings.problems(), path, errors).then(|| Arc::new(settings) as Arc<dyn SinkSettings>)
}

/// What a sink gets besides its own settings.
#[derive(Clone)]
pub struct SinkContext {
    pub name: String,
    pub store: Store,
    pub policy: SinkPolicy,
}

impl SinkContext {
    /// Records an event the destination refused for good; it counts as handled. The reason is
    /// kept without the credentials of any URL in it.
    pub async fn dead_letter(&self, event: &crate::event::Event, reason: &str, written: &mut Written) -> anyhow::Result<()> {
        let reason = crate::settings::redact_urls(reason);
        tracing::warn!(sink = %self.name, event = %event.id, reason, "event refused; dead-lettered");
        self.store.dead_letter(&self.name, event, &reason).await?;
        written.dead_lettered += 1;
        written.dead_letter_reason = Some(reason);
        Ok(())
    }
}

/// Encodes every event of `batches`, in order, on two threads when there are many: turning
/// events into documents (normalizing them first) is most of what a sink costs.
pub async fn encode_all<T, F>(batches: &[Batch], encode: Arc<F>) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(&crate::event::Event) -> T + Send + Sync + 'static,
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

    /// The most events this sink can have sent without knowing whether they arrived (its
    /// requests in flight × events per request). The worker hands it no more than this per
    /// write and records each write, so a crash repeats at most this many events here. `None`:
    /// no limit (a local write, all or nothing from the pipeline's point of view).
    fn events_in_flight(&self) -> Option<usize> {
        None
    }

    /// Replaces the previous snapshot of `(snapshot.tenant, snapshot.tag)` with this one, in one
    /// step where the destination can (a renamed file, one transaction). A destination that only
    /// appends, a SIEM, gets the records as events; that is this default.
    fn write_snapshot<'a>(&'a mut self, snapshot: &'a Snapshot) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            for batch in snapshot.event_batches(SNAPSHOT_BATCH)? {
                self.write(&[Arc::new(batch?)]).await?;
            }
            Ok(())
        })
    }
}

/// Records per write when a snapshot goes out as events.
pub const SNAPSHOT_BATCH: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dead_letter_reasons_keep_no_credentials_of_a_url() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = SinkContext { name: "s".into(), store: Store::open(dir.path()).unwrap(), policy: SinkPolicy::default() };
        let raw = serde_json::value::RawValue::from_string("{}".into()).unwrap();
        let event = crate::event::Event::hashed("t".into(), "s".into(), "json".into(), chrono::Utc::now(), raw);
        let mut written = Written::default();
        ctx.dead_letter(&event, "400 from https://u:hunter2@siem/x", &mut written).await.unwrap();
        assert_eq!(written.dead_letter_reason.as_deref(), Some("400 from https://***@siem/x"));
        assert_eq!(ctx.store.dead_letters("s").await.unwrap()[0].1, "400 from https://***@siem/x");
    }
}
