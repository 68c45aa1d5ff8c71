//! `type: withsecure`: pulls security events from the WithSecure Elements API.
//!
//! Each cycle, for each organization: query `security-events` from the checkpoint in ascending
//! `persistenceTimestamp` order, follow `nextAnchor` until it is absent, hand each page to the
//! sinks and save the checkpoint once the page is durable. Anchors live only within one cycle;
//! the next cycle starts again from the checkpoint.
//!
//! `start_mode` and `start_date` apply once per organization: the checkpoint records the setting
//! it began with, a restart resumes it, and only a changed setting starts a new position.
//! Re-collecting a window on purpose is `sluice backfill` ([`backfill`]), which reuses this
//! collection on a temporary position and leaves the checkpoint alone.

pub mod backfill;
pub mod checkpoint;
mod client;
pub mod config;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::SourceContext;
use crate::event::{Event, compact_raw, content_id};
use checkpoint::{Checkpoint, StartSetting, parse_timestamp};
use client::{Api, Params};
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
    // Organizations whose start position this process has reported in the log.
    let mut reported: HashSet<String> = HashSet::new();

    // Spread the first cycles of many tenants over up to a tenth of the interval (max 30 s).
    let spread = (config.interval / 10).min(Duration::from_secs(30));
    if !ctx.sleep(super::jitter(spread)).await {
        return Ok(());
    }
    loop {
        let cycle_start = tokio::time::Instant::now();
        match collect_cycle(&config, &ctx, &mut api, &mut reported).await {
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
        // ±5 % so tenants that share an interval drift apart instead of firing together.
        let next = cycle_start + config.interval.mul_f64(rand::rng().random_range(0.95..1.05));
        let wait = next.saturating_duration_since(tokio::time::Instant::now());
        if !ctx.sleep(wait).await {
            return Ok(());
        }
    }
}

async fn collect_cycle(
    config: &WithSecureConfig,
    ctx: &SourceContext,
    api: &mut Api,
    reported: &mut HashSet<String>,
) -> anyhow::Result<usize> {
    let mut total = 0;
    let mut failures = Vec::new();
    for org in organizations(config, api).await? {
        let mut cp = start_position(config, ctx, &org, reported.insert(org.clone())).await?;
        // One organization's failure does not keep the others from being collected.
        match collect_organization(config, ctx, api, &org, &mut cp, Target::Live).await {
            Ok(n) => total += n,
            Err(e) if ctx.cancel.is_cancelled() => return Err(e),
            Err(e) => failures.push(format!("organization {org}: {e:#}")),
        }
    }
    if failures.is_empty() { Ok(total) } else { Err(anyhow::anyhow!(failures.join("; "))) }
}

/// The organizations a cycle collects.
async fn organizations(config: &WithSecureConfig, api: &mut Api) -> anyhow::Result<Vec<String>> {
    Ok(match &config.organizations {
        Organizations::Own => vec![OWN_ORGANIZATION.to_string()],
        Organizations::List(ids) => ids.clone(),
        Organizations::All => list_organizations(api).await?,
    })
}

/// Where collection of one organization starts: the saved position, unless the start setting
/// (`start_mode`, `start_date`) differs from the one the saved position began with. A start
/// setting is thus applied once per organization: a restart resumes, a changed setting starts a
/// new position. `first` (the first cycle of this run for `org`) only decides what is logged.
async fn start_position(config: &WithSecureConfig, ctx: &SourceContext, org: &str, first: bool) -> anyhow::Result<Checkpoint> {
    let key = checkpoint_key(org);
    let saved: Option<Checkpoint> = match ctx.store.checkpoint(&ctx.tenant, &ctx.source, &key).await? {
        Some(text) => match serde_json::from_str(&text) {
            Ok(cp) => Some(cp),
            Err(e) => {
                tracing::error!(tenant = %ctx.tenant, source = %ctx.source, org, error = %e, "saved position is unreadable; starting anew");
                None
            }
        },
        None => None,
    };
    let setting = StartSetting::of(config);
    let (why, cp) = match saved {
        Some(cp) if cp.start.as_ref() == Some(&setting) => {
            if first {
                tracing::info!(tenant = %ctx.tenant, source = %ctx.source, org, start = %cp.start_param(), setting = %setting,
                    "withsecure resumes from the saved position (its start setting was applied already)");
            }
            return Ok(cp);
        }
        Some(mut cp) if cp.start.is_none() => {
            // Saved by a sluice that re-applied the start setting at every process start and
            // recorded none. Taking the position as begun with the current setting makes the
            // restart of the upgrade resume, rather than repeat a backfill once more.
            cp.start = Some(setting.clone());
            ("a position saved without its start setting (by an earlier sluice): taken as begun with it, resuming", cp)
        }
        Some(cp) => {
            let old = cp.start.clone().expect("checked above");
            let (started, cp) = match config.start_mode {
                StartMode::State => ("resuming from the saved position", cp),
                _ => ("starting a new position", new_position(config)?),
            };
            tracing::warn!(tenant = %ctx.tenant, source = %ctx.source, org, old = %old, new = %setting, start = %cp.start_param(),
                "withsecure start setting changed from `{old}` to `{setting}`: {started}");
            ("start setting changed", cp)
        }
        None => match config.start_mode {
            StartMode::State => match import_legacy_state(config, ctx)? {
                Some(cp) => ("imported from the original collector's state file", cp),
                None => ("no saved position: starting now", Checkpoint::starting_at(Utc::now())),
            },
            StartMode::Now | StartMode::Fixed => ("no saved position", new_position(config)?),
        },
    };
    let cp = Checkpoint { start: Some(setting.clone()), ..cp };
    tracing::info!(tenant = %ctx.tenant, source = %ctx.source, org, start = %cp.start_param(), setting = %setting, why, "withsecure start position");
    // Saved at once, with its start setting: a restart resumes here rather than start again.
    save(ctx, &key, &cp).await?;
    Ok(cp)
}

/// A position where `start_mode` `now` or `fixed` puts it.
fn new_position(config: &WithSecureConfig) -> anyhow::Result<Checkpoint> {
    Ok(Checkpoint::starting_at(match config.start_mode {
        StartMode::Fixed => config.start_date.context("start_mode fixed needs start_date")?,
        StartMode::Now | StartMode::State => Utc::now(),
    }))
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

/// Where one collection of an organization keeps its position.
enum Target<'a> {
    /// The source's own position, saved in the store once each page is durable.
    Live,
    /// A backfill's temporary position, held in memory only: the live position does not move.
    /// Stops before the first event persisted at or after `end`.
    Window { end: DateTime<Utc>, progress: &'a backfill::Progress },
}

async fn collect_organization(
    config: &WithSecureConfig,
    ctx: &SourceContext,
    api: &mut Api,
    org: &str,
    cp: &mut Checkpoint,
    target: Target<'_>,
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
        let mut past_end = false;
        for item in page.items {
            let keys: ItemKeys = serde_json::from_str(item.get()).context("security-events: an item is not an object")?;
            let ts = keys.persistence_timestamp.as_deref().and_then(parse_timestamp);
            if let (Target::Window { end, .. }, Some(t)) = (&target, ts)
                && t >= *end
            {
                // Items come in ascending order: the rest of the stream is past the window too.
                past_end = true;
                break;
            }
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
            if let Target::Live = target {
                save(ctx, &key, &moved).await?;
            }
            *cp = moved;
        }
        delivered += count;
        if let Target::Window { progress, .. } = &target {
            progress.page(org, count, cp);
        }
        match page.next_anchor {
            Some(next) if !next.is_empty() && !empty && !past_end => anchor = Some(next),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Emitter;
    use crate::store::Store;

    fn context(store: &Store) -> SourceContext {
        SourceContext {
            tenant: "acme".into(),
            source: "ws".into(),
            store: store.clone(),
            emitter: Emitter::new(Default::default(), Vec::new(), crate::usage::UsageMeter::new()),
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }

    fn config(extra: serde_json::Value) -> WithSecureConfig {
        let mut value = serde_json::json!({"client_id": "id", "client_secret": "secret"});
        value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    fn fixed(date: &str) -> WithSecureConfig {
        config(serde_json::json!({"start_mode": "fixed", "start_date": date}))
    }

    fn t(s: &str) -> DateTime<Utc> {
        parse_timestamp(s).unwrap()
    }

    /// What a cycle would do after collecting up to `ts`: save the moved position.
    async fn collected_up_to(ctx: &SourceContext, mut cp: Checkpoint, ts: &str) {
        cp.advance(Some(t(ts)), "e1");
        save(ctx, &checkpoint_key("own"), &cp).await.unwrap();
    }

    #[tokio::test]
    async fn fixed_applies_once_and_a_restart_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(&Store::open(dir.path()).unwrap());
        let config = fixed("2025-01-01T00:00:00Z");
        let cp = start_position(&config, &ctx, "own", true).await.unwrap();
        assert_eq!(cp.timestamp, t("2025-01-01T00:00:00Z"));
        collected_up_to(&ctx, cp, "2025-03-01T00:00:00Z").await;
        // Later cycles, and the first cycle after a restart, resume.
        for first in [false, true] {
            let cp = start_position(&config, &ctx, "own", first).await.unwrap();
            assert_eq!(cp.timestamp, t("2025-03-01T00:00:00Z"));
            assert!(cp.already_delivered(Some(t("2025-03-01T00:00:00Z")), "e1"));
        }
        // The same instant written another way is the same setting.
        let cp = start_position(&fixed("2025-01-01T01:00:00+01:00"), &ctx, "own", true).await.unwrap();
        assert_eq!(cp.timestamp, t("2025-03-01T00:00:00Z"));
        // Another organization has a position of its own: the setting applies to it once too.
        let other = start_position(&config, &ctx, "org-2", true).await.unwrap();
        assert_eq!(other.timestamp, t("2025-01-01T00:00:00Z"));
    }

    #[tokio::test]
    async fn a_changed_setting_starts_a_new_position_and_state_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(&Store::open(dir.path()).unwrap());
        let cp = start_position(&fixed("2025-01-01T00:00:00Z"), &ctx, "own", true).await.unwrap();
        collected_up_to(&ctx, cp, "2025-03-01T00:00:00Z").await;

        let cp = start_position(&fixed("2024-06-01T00:00:00Z"), &ctx, "own", true).await.unwrap();
        assert_eq!(cp.timestamp, t("2024-06-01T00:00:00Z"), "a new start_date starts the new window");
        assert!(cp.ids_at_timestamp.is_empty());
        collected_up_to(&ctx, cp, "2025-03-02T00:00:00Z").await;

        // `state` resumes whatever was collected, and is recorded as the setting now in force.
        let state = config(serde_json::json!({"start_mode": "state"}));
        let cp = start_position(&state, &ctx, "own", true).await.unwrap();
        assert_eq!(cp.timestamp, t("2025-03-02T00:00:00Z"));
        assert_eq!(cp.start, Some(StartSetting { mode: StartMode::State, date: None }));

        // `now` skips ahead once; a restart with `now` resumes instead of skipping again.
        let now = config(serde_json::json!({"start_mode": "now", "start_date": "2020-01-01T00:00:00Z"}));
        let before = Utc::now();
        let cp = start_position(&now, &ctx, "own", true).await.unwrap();
        assert!(cp.timestamp >= before);
        let skipped_to = cp.timestamp;
        collected_up_to(&ctx, cp, &(skipped_to + chrono::Duration::seconds(1)).to_rfc3339()).await;
        let cp = start_position(&now, &ctx, "own", true).await.unwrap();
        assert_eq!(cp.timestamp, skipped_to + chrono::Duration::seconds(1));
        // With `now`, start_date means nothing: changing it changes nothing.
        let now_other_date = config(serde_json::json!({"start_mode": "now", "start_date": "2021-01-01T00:00:00Z"}));
        assert_eq!(start_position(&now_other_date, &ctx, "own", true).await.unwrap().timestamp, cp.timestamp);
    }

    #[tokio::test]
    async fn a_position_saved_by_an_earlier_sluice_resumes_and_records_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(&Store::open(dir.path()).unwrap());
        let old = r#"{"timestamp":"2025-03-01T00:00:00Z","ids_at_timestamp":["e1"],"exclusive":false}"#;
        ctx.store.set_checkpoint("acme", "ws", "org:own", old.into()).await.unwrap();
        let config = fixed("2025-01-01T00:00:00Z");
        let cp = start_position(&config, &ctx, "own", true).await.unwrap();
        assert_eq!(cp.timestamp, t("2025-03-01T00:00:00Z"), "the upgrade's restart must not repeat the backfill");
        let saved: Checkpoint = serde_json::from_str(&ctx.store.checkpoint("acme", "ws", "org:own").await.unwrap().unwrap()).unwrap();
        assert_eq!(saved.start, Some(StartSetting::of(&config)));
    }

    #[tokio::test]
    async fn the_original_collectors_state_file_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(&Store::open(dir.path()).unwrap());
        let file = dir.path().join("tenant1.json");
        std::fs::write(&file, r#"{"last_ts": "2025-02-01T00:00:00.123Z", "anchor": "A"}"#).unwrap();
        let config = config(serde_json::json!({"start_mode": "state", "legacy_state_file": file}));
        let cp = start_position(&config, &ctx, "own", true).await.unwrap();
        assert_eq!((cp.timestamp, cp.exclusive), (t("2025-02-01T00:00:00.123Z"), true));
        collected_up_to(&ctx, cp, "2025-03-01T00:00:00Z").await;
        // The file is still there (sluice never writes it), but the saved position rules.
        let cp = start_position(&config, &ctx, "own", true).await.unwrap();
        assert_eq!(cp.timestamp, t("2025-03-01T00:00:00Z"));
    }
}
