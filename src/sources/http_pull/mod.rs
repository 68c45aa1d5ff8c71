//! `type: http_pull`: collects from any JSON HTTP API described in the config — auth, requests,
//! paging, records, export jobs — without Rust code (the model is Elastic's httpjson input).
//! The built-in vendors ([`crate::sources::collectors`]) are definitions of this same form.
//!
//! Each run walks every data set once:
//! - a **snapshot** data set streams its records into a spool file; only a run that completes
//!   hands the snapshot to the sinks, which replace the previous one of (tenant, tag) in one
//!   step; a run that fails leaves the last complete snapshot in place;
//! - a **stream** data set starts at its saved cursor, hands each page to the sinks and saves
//!   the cursor (the last record's value, and the ids seen at that value, so an inclusive
//!   filter repeats nothing) once the page is durable.
//!
//! One data set failing does not stop the others; the run reports each.

pub mod client;
pub mod config;
mod sigv4;
pub mod template;
pub mod walk;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chrono::Utc;
use futures::future::BoxFuture;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DataSetReport, SourceContext, SourceSettings};
use crate::event::{Event, compact_raw, content_id};
use crate::snapshot::SnapshotWriter;
pub use config::{DataSet, HttpPullConfig, Mode};
use walk::{Flow, Output};

impl SourceSettings for HttpPullConfig {
    fn problems(&self) -> Vec<(&'static str, String)> {
        self.check()
    }

    fn run(&self, ctx: SourceContext) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(run(Arc::new(self.clone()), ctx))
    }

    fn collect_once(&self, ctx: SourceContext) -> Option<BoxFuture<'static, Vec<DataSetReport>>> {
        let config = Arc::new(self.clone());
        Some(Box::pin(async move { run_once(&config, &ctx).await }))
    }

    fn preview(&self, ctx: SourceContext, dataset: Option<String>, records: usize) -> Option<BoxFuture<'static, anyhow::Result<()>>> {
        let config = self.clone();
        Some(Box::pin(async move { preview(&config, &ctx, dataset.as_deref(), records).await }))
    }
}

/// Walks each data set until `records` records were printed; saves and delivers nothing.
async fn preview(config: &HttpPullConfig, ctx: &SourceContext, dataset: Option<&str>, records: usize) -> anyhow::Result<()> {
    if let Some(wanted) = dataset
        && !config.datasets.iter().any(|d| d.tag == wanted)
    {
        let known: Vec<&str> = config.datasets.iter().map(|d| d.tag.as_str()).collect();
        anyhow::bail!("no data set `{wanted}`; known: {}", known.join(", "));
    }
    let mut client = client::Client::new(config, ctx.tenant.clone(), ctx.cancel.clone(), None)?;
    client.trace = true;
    for ds in config.datasets.iter().filter(|d| dataset.is_none_or(|w| w == d.tag)) {
        let cursor = match &ds.cursor {
            None => None,
            Some(c) => Some(match ctx.store.checkpoint(&ctx.tenant, &ctx.source, &ds.tag).await? {
                Some(text) => serde_json::from_str::<StreamPosition>(&text)?.cursor,
                None => c.initial.render_text(&template::Vars::default()).map_err(|e| anyhow!("cursor.initial: {e}"))?,
            }),
        };
        let mut out = PrintOutput { left: records, shown: 0 };
        walk::walk(&mut client, ds, cursor.as_deref(), &mut out).await.with_context(|| format!("data set `{}`", ds.tag))?;
        eprintln!("{}: {} records shown", ds.tag, out.shown);
    }
    Ok(())
}

struct PrintOutput {
    left: usize,
    shown: usize,
}

impl Output for PrintOutput {
    fn page(&mut self, records: Vec<Value>) -> BoxFuture<'_, anyhow::Result<Flow>> {
        Box::pin(async move {
            for record in records.into_iter().take(self.left) {
                println!("{}", serde_json::to_string_pretty(&record)?);
                self.left -= 1;
                self.shown += 1;
            }
            Ok(if self.left == 0 { Flow::Stop } else { Flow::Continue })
        })
    }
}

async fn run(config: Arc<HttpPullConfig>, ctx: SourceContext) -> anyhow::Result<()> {
    // Spread the first runs of many tenants over up to a tenth of the interval (max 30 s).
    let spread = (config.interval_or_default() / 10).min(Duration::from_secs(30));
    if !sleep_or_cancel(&ctx, jitter(spread)).await {
        return Ok(());
    }
    let slack = crate::notify::slack();
    if let Some(slack) = slack {
        slack.hide(config.auth.secrets());
    }
    loop {
        let started = tokio::time::Instant::now();
        let reports = run_once(&config, &ctx).await;
        if ctx.cancel.is_cancelled() {
            return Ok(());
        }
        for r in &reports {
            if let Some(slack) = slack {
                let key = format!("{} of tenant {}, data set {}", ctx.source, ctx.tenant, r.tag);
                match &r.result {
                    Ok(()) => slack.recovered(&key, &format!("Collection recovered: {key}")).await,
                    Err(e) => slack.tell(&key, crate::notify::Level::Error, &format!("Collection failed: {key}: {e:#}")).await,
                }
            }
            match &r.result {
                Ok(()) => tracing::info!(tenant = %ctx.tenant, source = %ctx.source, tag = %r.tag, records = r.records,
                    took = ?r.took, "data set collected"),
                Err(e) => {
                    metrics::counter!("sluice_source_errors_total", "tenant" => ctx.tenant.to_string(), "source" => ctx.source.to_string())
                        .increment(1);
                    tracing::error!(tenant = %ctx.tenant, source = %ctx.source, tag = %r.tag, error = %format!("{e:#}"),
                        "data set failed; its last complete snapshot or saved position stays")
                }
            }
        }
        if !sleep_or_cancel(&ctx, next_run(&config, started)).await {
            return Ok(());
        }
    }
}

/// Time until the next run: the next cron time, or the interval ±5 % from this run's start.
fn next_run(config: &HttpPullConfig, started: tokio::time::Instant) -> Duration {
    if let Some(expr) = &config.cron
        && let Ok(cron) = <croner::Cron as std::str::FromStr>::from_str(expr)
        && let Ok(next) = cron.find_next_occurrence(&Utc::now(), false)
    {
        return (next - Utc::now()).to_std().unwrap_or_default();
    }
    let next = started + config.interval_or_default().mul_f64(rand::rng().random_range(0.95..1.05));
    next.saturating_duration_since(tokio::time::Instant::now())
}

/// Runs every data set once, in order.
pub async fn run_once(config: &HttpPullConfig, ctx: &SourceContext) -> Vec<DataSetReport> {
    let mut client = match client::Client::new(config, ctx.tenant.clone(), ctx.cancel.clone(), Some(ctx.emitter.usage().clone())) {
        Ok(c) => c,
        Err(e) => {
            let e = Arc::new(e);
            return config
                .datasets
                .iter()
                .map(|d| DataSetReport { tag: d.tag.clone(), records: 0, took: Duration::ZERO, result: Err(anyhow!("{e:#}")) })
                .collect();
        }
    };
    let mut reports = Vec::new();
    for ds in &config.datasets {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let started = Instant::now();
        let (records, result) = match ds.mode {
            Mode::Snapshot => collect_snapshot(&mut client, ds, ctx).await,
            Mode::Stream => collect_stream(&mut client, ds, ctx).await,
        };
        reports.push(DataSetReport { tag: ds.tag.clone(), records, took: started.elapsed(), result });
    }
    reports
}

/// Spools the whole data set, then hands it to the sinks; retried while a sink fails, up to a
/// few minutes, since the spool is complete and only the hand-over is missing.
async fn collect_snapshot(client: &mut client::Client, ds: &DataSet, ctx: &SourceContext) -> (u64, anyhow::Result<()>) {
    let dir = ctx.store.path().parent().unwrap_or(std::path::Path::new(".")).join("spool");
    let writer = match SnapshotWriter::create(&dir, ctx.tenant.clone(), ds.tag.as_str().into()) {
        Ok(w) => w,
        Err(e) => return (0, Err(e)),
    };
    let mut out = SpoolOutput { writer, tag: ds.tag.clone(), reported: Instant::now() };
    if let Err(e) = walk::walk(client, ds, None, &mut out).await {
        return (out.writer.records(), Err(e));
    }
    let records = out.writer.records();
    let snapshot = match out.writer.finish() {
        Ok(s) => Arc::new(s),
        Err(e) => return (records, Err(e)),
    };
    let mut wait = Duration::from_secs(1);
    loop {
        let failures: Vec<String> = match ctx.emitter.emit_snapshot(snapshot.clone()).await {
            Ok(outcomes) => outcomes.into_iter().filter_map(|(sink, r)| r.err().map(|e| format!("sink `{sink}`: {e:#}"))).collect(),
            Err(e) => vec![format!("{e:#}")],
        };
        if failures.is_empty() {
            return (records, Ok(()));
        }
        if wait > Duration::from_secs(120) || !sleep_or_cancel(ctx, wait).await {
            return (records, Err(anyhow!("the snapshot was not taken: {}", failures.join("; "))));
        }
        tracing::warn!(tenant = %ctx.tenant, tag = %ds.tag, failures = %failures.join("; "), retry_in = ?wait, "snapshot not taken by every sink; retrying");
        wait *= 2;
    }
}

struct SpoolOutput {
    writer: SnapshotWriter,
    tag: String,
    /// When progress was last logged: a large export takes minutes.
    reported: Instant,
}

impl Output for SpoolOutput {
    fn page(&mut self, records: Vec<Value>) -> BoxFuture<'_, anyhow::Result<Flow>> {
        Box::pin(async move {
            for record in records {
                self.writer.push(record)?;
            }
            if self.reported.elapsed() >= PROGRESS_EVERY {
                self.reported = Instant::now();
                tracing::info!(tag = %self.tag, records = self.writer.records(), "collecting");
            }
            Ok(Flow::Continue)
        })
    }
}

/// How often a long collection logs how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// A stream's saved position: the cursor value and the ids delivered at exactly that value.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub cursor: String,
    #[serde(default)]
    pub ids: Vec<String>,
}

async fn collect_stream(client: &mut client::Client, ds: &DataSet, ctx: &SourceContext) -> (u64, anyhow::Result<()>) {
    let cursor = ds.cursor.as_ref().expect("checked at load: a stream has a cursor");
    let position = match ctx.store.checkpoint(&ctx.tenant, &ctx.source, &ds.tag).await {
        Ok(Some(text)) => match serde_json::from_str::<StreamPosition>(&text) {
            Ok(p) => p,
            Err(e) => return (0, Err(anyhow!("the saved position of `{}` is unreadable: {e}", ds.tag))),
        },
        Ok(None) => match cursor.initial.render_text(&template::Vars::default()) {
            Ok(initial) => StreamPosition { cursor: initial, ids: Vec::new() },
            Err(e) => return (0, Err(anyhow!("cursor.initial: {e}"))),
        },
        Err(e) => return (0, Err(e)),
    };
    let start = position.cursor.clone();
    let mut out = StreamOutput { ctx, ds, seen: position.ids.iter().cloned().collect(), position, delivered: 0 };
    let result = walk::walk(client, ds, Some(&start), &mut out).await.map(|_| ());
    (out.delivered, result)
}

struct StreamOutput<'a> {
    ctx: &'a SourceContext,
    ds: &'a DataSet,
    position: StreamPosition,
    /// `position.ids` as a set.
    seen: HashSet<String>,
    delivered: u64,
}

impl Output for StreamOutput<'_> {
    fn page(&mut self, records: Vec<Value>) -> BoxFuture<'_, anyhow::Result<Flow>> {
        Box::pin(async move {
            let pointer = &self.ds.cursor.as_ref().expect("a stream has a cursor").pointer;
            let vendor: Arc<str> = self.ds.decoder.as_deref().unwrap_or("json").into();
            let tag: Arc<str> = self.ds.tag.as_str().into();
            let now = Utc::now();
            let mut events = Vec::with_capacity(records.len());
            let mut position = self.position.clone();
            let mut seen = self.seen.clone();
            for record in &records {
                let raw = compact_raw(record);
                let id = match self.ds.id.as_ref().and_then(|p| record.pointer(p)) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) if !v.is_null() => v.to_string(),
                    _ => content_id(raw.get().as_bytes()),
                };
                let value = match record.pointer(pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) if !v.is_null() => v.to_string(),
                    _ => position.cursor.clone(),
                };
                if value == position.cursor && seen.contains(&id) {
                    continue;
                }
                if value != position.cursor {
                    position.cursor = value;
                    seen.clear();
                }
                seen.insert(id.clone());
                events.push(Event {
                    id,
                    tenant: self.ctx.tenant.clone(),
                    source: tag.clone(),
                    vendor: vendor.clone(),
                    received_at: now,
                    raw,
                    mapped: None,
                });
            }
            if events.is_empty() {
                return Ok(Flow::Continue);
            }
            let count = events.len() as u64;
            self.ctx.emitter.emit(events).await?.await.context("the sinks did not take the page")?;
            position.ids = seen.iter().cloned().collect();
            position.ids.sort();
            let text = serde_json::to_string(&position)?;
            self.ctx.store.set_checkpoint(&self.ctx.tenant, &self.ctx.source, &self.ds.tag, text).await?;
            self.position = position;
            self.seen = seen;
            self.delivered += count;
            Ok(Flow::Continue)
        })
    }
}

fn jitter(max: Duration) -> Duration {
    if max.is_zero() { max } else { rand::rng().random_range(Duration::ZERO..max) }
}

async fn sleep_or_cancel(ctx: &SourceContext, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = ctx.cancel.cancelled() => false,
    }
}
