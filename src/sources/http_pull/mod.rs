//! `type: http_pull`: collects from any JSON HTTP API described in the config — auth, requests,
//! paging, records, export jobs — without Rust code (the model is Elastic's httpjson input).
//! The built-in vendors ([`crate::sources::collectors`]) are definitions of this same form.
//!
//! Each run walks every data set once:
//! - a **snapshot** data set streams its records into a spool file; only a run that completes
//!   hands the snapshot to the sinks, which replace the previous one of (tenant, tag) in one
//!   step; a run that fails leaves the last complete snapshot in place;
//! - a **stream** data set starts at its saved cursor, hands each page to the sinks and saves
//!   the cursor (the furthest value delivered, and the ids seen at that value, so an inclusive
//!   filter repeats nothing) once the page is durable — or, for APIs that list newest first,
//!   once the run read every page;
//! - a **poll** data set reads a current list (firing alerts) and delivers what it did not
//!   deliver before, remembering the ids across restarts.
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
        let position = match &ds.cursor {
            None => None,
            Some(c) => Some(match ctx.store.checkpoint(&ctx.tenant, &ctx.source, &ds.tag).await? {
                Some(text) => serde_json::from_str::<StreamPosition>(&text)?,
                None => StreamPosition::initial(c)?,
            }),
        };
        let resume = position.as_ref().and_then(|p| p.resume_url());
        let mut out = PrintOutput { left: records, shown: 0 };
        walk::walk(&mut client, ds, position.as_ref().map(|p| p.cursor.as_str()), resume, &mut out)
            .await
            .with_context(|| format!("data set `{}`", ds.tag))?;
        eprintln!("{}: {} records shown", ds.tag, out.shown);
    }
    Ok(())
}

struct PrintOutput {
    left: usize,
    shown: usize,
}

impl Output for PrintOutput {
    fn page<'a>(&'a mut self, records: Vec<Value>, _next: Option<&'a reqwest::Url>) -> BoxFuture<'a, anyhow::Result<Flow>> {
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
    if !ctx.sleep(super::jitter(spread)).await {
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
        if !ctx.sleep(next_run(&config, started)).await {
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
            Mode::Poll => collect_poll(&mut client, ds, ctx).await,
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
    if let Err(e) = walk::walk(client, ds, None, None, &mut out).await {
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
        if wait > Duration::from_secs(120) || !ctx.sleep(wait).await {
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
    fn page<'a>(&'a mut self, records: Vec<Value>, _next: Option<&'a reqwest::Url>) -> BoxFuture<'a, anyhow::Result<Flow>> {
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

/// A stream's saved position: the cursor value and the ids delivered at exactly that value;
/// with `resume: next_page`, the URL of the next page instead.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamPosition {
    pub cursor: String,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl StreamPosition {
    fn initial(cursor: &config::Cursor) -> anyhow::Result<StreamPosition> {
        let initial = cursor.initial.render_text(&template::Vars::default()).map_err(|e| anyhow!("cursor.initial: {e}"))?;
        Ok(StreamPosition { cursor: initial, ids: Vec::new(), next: None })
    }

    fn resume_url(&self) -> Option<reqwest::Url> {
        self.next.as_deref().and_then(|u| reqwest::Url::parse(u).ok())
    }
}

async fn collect_stream(client: &mut client::Client, ds: &DataSet, ctx: &SourceContext) -> (u64, anyhow::Result<()>) {
    let cursor = ds.cursor.as_ref().expect("checked at load: a stream has a cursor");
    let saved = match ctx.store.checkpoint(&ctx.tenant, &ctx.source, &ds.tag).await {
        Ok(Some(text)) => match serde_json::from_str::<StreamPosition>(&text) {
            Ok(p) => p,
            Err(e) => return (0, Err(anyhow!("the saved position of `{}` is unreadable: {e}", ds.tag))),
        },
        Ok(None) => match StreamPosition::initial(cursor) {
            Ok(p) => p,
            Err(e) => return (0, Err(e)),
        },
        Err(e) => return (0, Err(e)),
    };
    let resume = saved.resume_url();
    let mut out = StreamOutput { ctx, ds, seen: saved.ids.iter().cloned().collect(), next: saved.clone(), saved, delivered: 0 };
    let start = out.saved.cursor.clone();
    let mut result = walk::walk(client, ds, Some(&start), resume, &mut out).await.map(|_| ());
    // Newest first: the position moves only once every page was read.
    if result.is_ok() && cursor.order == config::Order::Descending {
        result = out.save().await;
    }
    (out.delivered, result)
}

/// Turns records into events of the data set: the id from `id` (else a hash of the record).
fn event_of(ctx: &SourceContext, ds: &DataSet, record: &Value, at: chrono::DateTime<Utc>) -> Event {
    let raw = compact_raw(record);
    let id = ds.id.as_ref().and_then(|ids| ids.of(record)).unwrap_or_else(|| content_id(raw.get().as_bytes()));
    let vendor: Arc<str> = ds.decoder.as_deref().unwrap_or("json").into();
    Event { id, tenant: ctx.tenant.clone(), source: ds.tag.as_str().into(), vendor, received_at: at, raw, mapped: None }
}

struct StreamOutput<'a> {
    ctx: &'a SourceContext,
    ds: &'a DataSet,
    /// Where this run started.
    saved: StreamPosition,
    /// `saved.ids`: records at exactly the saved value that were delivered already.
    seen: HashSet<String>,
    /// The furthest value delivered so far, and the ids delivered at it.
    next: StreamPosition,
    delivered: u64,
}

impl StreamOutput<'_> {
    async fn save(&self) -> anyhow::Result<()> {
        let mut position = self.next.clone();
        position.ids.sort();
        position.ids.dedup();
        self.ctx.store.set_checkpoint(&self.ctx.tenant, &self.ctx.source, &self.ds.tag, serde_json::to_string(&position)?).await
    }
}

impl Output for StreamOutput<'_> {
    fn page<'a>(&'a mut self, records: Vec<Value>, next_page: Option<&'a reqwest::Url>) -> BoxFuture<'a, anyhow::Result<Flow>> {
        Box::pin(async move {
            let cursor = self.ds.cursor.as_ref().expect("a stream has a cursor");
            let now = Utc::now();
            let mut events = Vec::with_capacity(records.len());
            let mut next = self.next.clone();
            if cursor.resume == config::Resume::NextPage {
                next.next = next_page.map(|u| u.to_string()).or(next.next);
            }
            for record in &records {
                let event = event_of(self.ctx, self.ds, record, now);
                let Some(pointer) = &cursor.pointer else {
                    // The position is the next page's URL: no value to track.
                    events.push(event);
                    continue;
                };
                let value = match record.pointer(pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) if !v.is_null() => v.to_string(),
                    _ => self.saved.cursor.clone(),
                };
                if value == self.saved.cursor && self.seen.contains(&event.id) {
                    continue;
                }
                match compare(&value, &next.cursor) {
                    std::cmp::Ordering::Greater => {
                        next = StreamPosition { cursor: value, ids: vec![event.id.clone()], next: next.next.take() }
                    }
                    std::cmp::Ordering::Equal => next.ids.push(event.id.clone()),
                    std::cmp::Ordering::Less => {}
                }
                events.push(event);
            }
            if events.is_empty() {
                return Ok(Flow::Continue);
            }
            let count = events.len() as u64;
            self.ctx.emitter.emit(events).await?.await.context("the sinks did not take the page")?;
            self.next = next;
            self.delivered += count;
            if cursor.order == config::Order::Ascending {
                self.save().await?;
            }
            Ok(Flow::Continue)
        })
    }
}

/// Orders cursor values: as instants when both are RFC 3339 times (fractions of a second vary
/// in length), as numbers when both are integers, else as text.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    if let (Ok(x), Ok(y)) = (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        return x.cmp(&y);
    }
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return x.cmp(&y);
    }
    a.cmp(b)
}

/// What a poll remembers: the ids it delivered that the API still lists.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PollState {
    ids: Vec<String>,
}

async fn collect_poll(client: &mut client::Client, ds: &DataSet, ctx: &SourceContext) -> (u64, anyhow::Result<()>) {
    let state = match ctx.store.checkpoint(&ctx.tenant, &ctx.source, &ds.tag).await {
        Ok(Some(text)) => match serde_json::from_str::<PollState>(&text) {
            Ok(s) => Some(s),
            Err(e) => return (0, Err(anyhow!("the saved state of `{}` is unreadable: {e}", ds.tag))),
        },
        Ok(None) => None,
        Err(e) => return (0, Err(e)),
    };
    let skip = state.is_none() && ds.existing_at_start == config::ExistingAtStart::Skip;
    let known: HashSet<String> = state.map(|s| s.ids.into_iter().collect()).unwrap_or_default();
    let mut out = PollOutput { ctx, ds, known, listed: HashSet::new(), skip, delivered: 0 };
    let mut result = walk::walk(client, ds, None, None, &mut out).await.map(|_| ());
    if result.is_ok() {
        // Only what is still listed is worth remembering: the state stays as small as the list.
        result = out.save(&out.listed).await;
    }
    (out.delivered, result)
}

struct PollOutput<'a> {
    ctx: &'a SourceContext,
    ds: &'a DataSet,
    /// Delivered before (or skipped at the first start).
    known: HashSet<String>,
    /// Listed in this run.
    listed: HashSet<String>,
    skip: bool,
    delivered: u64,
}

impl PollOutput<'_> {
    async fn save(&self, ids: &HashSet<String>) -> anyhow::Result<()> {
        let mut ids: Vec<String> = ids.iter().cloned().collect();
        ids.sort();
        let text = serde_json::to_string(&PollState { ids })?;
        self.ctx.store.set_checkpoint(&self.ctx.tenant, &self.ctx.source, &self.ds.tag, text).await
    }
}

impl Output for PollOutput<'_> {
    fn page<'a>(&'a mut self, records: Vec<Value>, _next: Option<&'a reqwest::Url>) -> BoxFuture<'a, anyhow::Result<Flow>> {
        Box::pin(async move {
            let now = Utc::now();
            let mut events = Vec::new();
            for record in &records {
                let event = event_of(self.ctx, self.ds, record, now);
                self.listed.insert(event.id.clone());
                if !self.skip && !self.known.contains(&event.id) {
                    events.push(event);
                }
            }
            if events.is_empty() {
                return Ok(Flow::Continue);
            }
            let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
            let count = events.len() as u64;
            self.ctx.emitter.emit(events).await?.await.context("the sinks did not take the page")?;
            self.known.extend(ids);
            self.delivered += count;
            // A crash before the run ends must not deliver these again.
            self.save(&self.known).await?;
            Ok(Flow::Continue)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering;

    #[test]
    fn cursor_values_order_as_times_numbers_or_text() {
        // Text order would put `Z` after `.`.
        assert_eq!(compare("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z"), Ordering::Less);
        assert_eq!(compare("2021-05-02T14:19:01.3266667Z", "2021-05-02T14:19:01.32666670Z"), Ordering::Equal);
        assert_eq!(compare("999", "1000"), Ordering::Less);
        assert_eq!(compare("b", "a"), Ordering::Greater);
    }
}
