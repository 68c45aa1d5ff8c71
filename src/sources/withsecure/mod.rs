//! `type: withsecure`: pulls security events from the WithSecure Elements API.
//!
//! Each cycle, for each organization: query `security-events` from the checkpoint in ascending
//! `persistenceTimestamp` order, follow `nextAnchor` until it is absent, hand each page to the
//! sinks and save the checkpoint once the page is durable. Anchors live only within one cycle;
//! the next cycle starts again from the checkpoint.

mod api;
pub mod checkpoint;
pub mod config;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use rand::Rng;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::SourceContext;
use crate::event::{Event, compact_raw, content_id};
use api::{Api, Params};
use checkpoint::{Checkpoint, parse_timestamp};
pub use config::{Organizations, StartMode, WithSecureConfig};

const EVENTS_PATH: &str = "/security-events/v1/security-events";
const ORGANIZATIONS_PATH: &str = "/organizations/v1/organizations";
const PAGE_LIMIT: &str = "200";
const OWN_ORGANIZATION: &str = "own";

/// Pages being handed to the sinks at once, across all tenants. A page is held from its arrival
/// until the sinks have it; bounding them bounds memory and the sinks' queues. Requests
/// themselves are not bounded here, so a tenant whose API is slow or failing holds no permit and
/// delays nobody.
const PAGES_IN_HAND: usize = 64;
static PAGES: Semaphore = Semaphore::const_new(PAGES_IN_HAND);

/// One page of `security-events`. Items stay raw: the vendor JSON is kept byte for byte.
#[derive(Deserialize)]
struct Page {
    items: Vec<Box<RawValue>>,
    #[serde(rename = "nextAnchor")]
    next_anchor: Option<String>,
}

/// The two fields of an item the collector itself needs.
#[derive(Deserialize)]
struct ItemKeys<'a> {
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "persistenceTimestamp", borrow)]
    persistence_timestamp: Option<std::borrow::Cow<'a, str>>,
}

pub async fn run(config: WithSecureConfig, ctx: SourceContext) -> anyhow::Result<()> {
    let mut api = Api::new(&config, &ctx.tenant, ctx.cancel.clone(), ctx.emitter.usage().clone())?;
    // Organizations whose start position this process has settled (start_mode applies once).
    let mut started: HashSet<String> = HashSet::new();
    let mut first_run = ctx.first_run_in_process;

    // Spread the first cycles of many tenants over up to a tenth of the interval (max 30 s).
    let spread = (config.interval / 10).min(Duration::from_secs(30));
    if !sleep_or_cancel(&ctx, jitter(spread)).await {
        return Ok(());
    }
    loop {
        let cycle_start = tokio::time::Instant::now();
        match collect_cycle(&config, &ctx, &mut api, &mut started, first_run).await {
            Ok(count) => tracing::info!(tenant = %ctx.tenant, source = %ctx.source, events = count,
                took = ?cycle_start.elapsed(), "withsecure cycle done"),
            Err(_) if ctx.cancel.is_cancelled() => return Ok(()),
            Err(e) => {
                metrics::counter!("sluice_source_errors_total", "tenant" => ctx.tenant.to_string(), "source" => ctx.source.to_string())
                    .increment(1);
                tracing::error!(tenant = %ctx.tenant, source = %ctx.source, error = %format!("{e:#}"),
                    "withsecure cycle failed; the next cycle resumes from the saved position");
            }
        }
        first_run = false;
        // ±5 % so tenants that share an interval drift apart instead of firing together.
        let next = cycle_start + config.interval.mul_f64(rand::rng().random_range(0.95..1.05));
        let wait = next.saturating_duration_since(tokio::time::Instant::now());
        if !sleep_or_cancel(&ctx, wait).await {
            return Ok(());
        }
    }
}

async fn collect_cycle(
    config: &WithSecureConfig,
    ctx: &SourceContext,
    api: &mut Api,
    started: &mut HashSet<String>,
    first_run: bool,
) -> anyhow::Result<usize> {
    let organizations = match &config.organizations {
        Organizations::Own => vec![OWN_ORGANIZATION.to_string()],
        Organizations::List(ids) => ids.clone(),
        Organizations::All => list_organizations(api).await?,
    };
    let mut total = 0;
    let mut failures = Vec::new();
    for org in organizations {
        let apply_start_mode = first_run && !started.contains(&org);
        let mut cp = start_position(config, ctx, &org, apply_start_mode).await?;
        started.insert(org.clone());
        // One organization's failure does not keep the others from being collected.
        match collect_organization(config, ctx, api, &org, &mut cp).await {
            Ok(n) => total += n,
            Err(e) if ctx.cancel.is_cancelled() => return Err(e),
            Err(e) => failures.push(format!("organization {org}: {e:#}")),
        }
    }
    if failures.is_empty() { Ok(total) } else { Err(anyhow::anyhow!(failures.join("; "))) }
}

/// Where collection of one organization starts, per `start_mode` and the saved state.
async fn start_position(config: &WithSecureConfig, ctx: &SourceContext, org: &str, apply_start_mode: bool) -> anyhow::Result<Checkpoint> {
    let key = checkpoint_key(org);
    let saved: Option<Checkpoint> = match ctx.store.checkpoint(&ctx.tenant, &ctx.source, &key).await? {
        Some(text) => match serde_json::from_str(&text) {
            Ok(cp) => Some(cp),
            Err(e) => {
                tracing::error!(tenant = %ctx.tenant, source = %ctx.source, org, error = %e, "saved position is unreadable; starting now");
                None
            }
        },
        None => None,
    };
    let chosen = match (apply_start_mode, config.start_mode) {
        (true, StartMode::Now) => Some(("start_mode now", Checkpoint::starting_at(Utc::now()))),
        (true, StartMode::Fixed) => {
            let date = config.start_date.context("start_mode fixed needs start_date")?;
            Some(("start_mode fixed", Checkpoint::starting_at(date)))
        }
        _ => match saved {
            Some(cp) => return Ok(cp),
            None => match import_legacy_state(config, ctx)? {
                Some(cp) => Some(("imported from the original collector's state file", cp)),
                None => Some(("no saved position: starting now", Checkpoint::starting_at(Utc::now()))),
            },
        },
    };
    let (why, cp) = chosen.expect("always chosen");
    tracing::info!(tenant = %ctx.tenant, source = %ctx.source, org, start = %cp.start_param(), why, "withsecure start position");
    // Saved at once, so a restart resumes here rather than applying "now" again.
    save(ctx, &key, &cp).await?;
    Ok(cp)
}

/// Reads `{"last_ts": …}` from a state file of the original Python collector.
fn import_legacy_state(config: &WithSecureConfig, ctx: &SourceContext) -> anyhow::Result<Option<Checkpoint>> {
    let Some(path) = &config.legacy_state_file else { return Ok(None) };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            // The original writes this file non-atomically; a torn file must not stop us.
            tracing::warn!(tenant = %ctx.tenant, path = %path.display(), error = %e, "legacy state file is corrupt; ignoring it");
            return Ok(None);
        }
    };
    let Some(ts) = value.get("last_ts").and_then(Value::as_str).and_then(parse_timestamp) else { return Ok(None) };
    // The original collected everything at last_ts (its queries were exclusive).
    Ok(Some(Checkpoint { exclusive: true, ..Checkpoint::starting_at(ts) }))
}

async fn collect_organization(
    config: &WithSecureConfig,
    ctx: &SourceContext,
    api: &mut Api,
    org: &str,
    cp: &mut Checkpoint,
) -> anyhow::Result<usize> {
    let key = checkpoint_key(org);
    let start = cp.clone();
    let mut anchor: Option<String> = None;
    let mut delivered = 0;
    loop {
        let form = query(config, org, &start, anchor.as_deref());
        let page: Page = api.call(Method::POST, EVENTS_PATH, Params::Form(&form)).await?;
        let _permit = PAGES.acquire().await.expect("the semaphore is never closed");
        let now = Utc::now();
        let mut events = Vec::with_capacity(page.items.len());
        let mut moved = cp.clone();
        let empty = page.items.is_empty();
        for item in page.items {
            let keys: ItemKeys = serde_json::from_str(item.get()).context("security-events: an item is not an object")?;
            let ts = keys.persistence_timestamp.as_deref().and_then(parse_timestamp);
            let id = match keys.id {
                Some(id) => id.into_owned(),
                None => content_id(item.get().as_bytes()),
            };
            // Output is one event per line: re-serialize the rare pretty-printed item.
            let raw = if item.get().contains('\n') {
                compact_raw(&serde_json::from_str::<Value>(item.get()).context("security-events: invalid item")?)
            } else {
                item
            };
            if moved.already_delivered(ts, &id) {
                continue;
            }
            moved.advance(ts, &id);
            events.push(Event {
                id,
                tenant: ctx.tenant.clone(),
                source: ctx.source.clone(),
                vendor: "withsecure".into(),
                received_at: now,
                raw,
                mapped: None,
            });
        }
        let count = events.len();
        if count > 0 {
            ctx.emitter.emit(events).await?.await?;
        }
        if moved != *cp {
            save(ctx, &key, &moved).await?;
            *cp = moved;
        }
        delivered += count;
        match page.next_anchor {
            Some(next) if !next.is_empty() && !empty => anchor = Some(next),
            _ => return Ok(delivered),
        }
    }
}

/// The form of one security-events query. The start stays fixed through a cycle's pages.
fn query(config: &WithSecureConfig, org: &str, start: &Checkpoint, anchor: Option<&str>) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("limit", PAGE_LIMIT.to_string()),
        ("order", "asc".to_string()),
        ("persistenceTimestampStart", start.start_param()),
        // Inclusive unless every event at the start instant is known delivered: see checkpoint.rs.
        ("exclusiveStart", start.exclusive.to_string()),
    ];
    form.extend(config.engine_groups.iter().map(|g| ("engineGroup", g.clone())));
    if org != OWN_ORGANIZATION {
        form.push(("organizationId", org.to_string()));
    }
    if let Some(lang) = &config.language {
        form.push(("language", lang.clone()));
    }
    if let Some(anchor) = anchor {
        form.push(("anchor", anchor.to_string()));
    }
    form
}

/// Every organization the credentials can see (partner accounts).
async fn list_organizations(api: &mut Api) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut anchor: Option<String> = None;
    loop {
        let mut params = vec![("limit", PAGE_LIMIT.to_string())];
        if let Some(a) = &anchor {
            params.push(("anchor", a.clone()));
        }
        let page: Value = api.call(Method::GET, ORGANIZATIONS_PATH, Params::Query(&params)).await?;
        let items = page.get("items").and_then(Value::as_array).context("organizations: response has no `items` array")?;
        ids.extend(items.iter().filter_map(|o| o.get("id").and_then(Value::as_str)).map(str::to_string));
        match page.get("nextAnchor").and_then(Value::as_str) {
            Some(next) if !items.is_empty() => anchor = Some(next.to_string()),
            _ => return Ok(ids),
        }
    }
}

fn checkpoint_key(org: &str) -> String {
    format!("org:{org}")
}

async fn save(ctx: &SourceContext, key: &str, cp: &Checkpoint) -> anyhow::Result<()> {
    // How far behind the vendor the collection is: the newest event delivered, against now.
    let lag = (chrono::Utc::now() - cp.timestamp).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::gauge!("sluice_source_lag_seconds", "tenant" => ctx.tenant.to_string(), "source" => ctx.source.to_string(), "key" => key.to_string())
        .set(lag);
    ctx.store.set_checkpoint(&ctx.tenant, &ctx.source, key, serde_json::to_string(cp)?).await
}

fn jitter(max: Duration) -> Duration {
    if max.is_zero() { max } else { rand::rng().random_range(Duration::ZERO..max) }
}

/// Sleeps; false if the source was cancelled meanwhile.
async fn sleep_or_cancel(ctx: &SourceContext, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = ctx.cancel.cancelled() => false,
    }
}
