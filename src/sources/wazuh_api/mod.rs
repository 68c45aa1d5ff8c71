//! `type: wazuh_api`: keeps an inventory of a Wazuh manager's agents in the store.
//!
//! Once per interval: page through `GET /agents`, then for every agent (`parallelism` at once)
//! page through `GET /syscheck/{id}` and `GET /syscollector/{id}/packages` and read
//! `GET /syscollector/{id}/os`, and write the agent and what was read about it in one
//! transaction. Records are updated in place; see `store/inventory.rs` for what is deleted and
//! what is kept. The source emits no events.

mod client;
pub mod config;

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::SourceContext;
use crate::store::{WazuhInventory, WazuhListing};
use client::{Client, Refused};
pub use config::WazuhApiConfig;

const AGENTS_PATH: &str = "/agents";
/// The checkpoint holding when the last complete collection started (RFC 3339).
const COLLECTED: &str = "collected";
/// Wazuh's "There is no database for agent": the agent never connected (or is unknown), so it
/// has no FIM or syscollector data.
const NO_DATABASE: i64 = 2007;
/// Wazuh's "Agent does not exist" among `failed_items`.
const NO_AGENT: i64 = 1701;
/// A list whose offsets shifted under the paging is read this many times before its items are
/// kept without deleting the ones it lacks.
const LISTING_TRIES: usize = 3;
/// Items one list may hold; a manager answering more is broken.
const MAX_ITEMS: usize = 10_000_000;
/// First wait after a failed collection; it doubles up to the interval.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// The `affected_items` envelope of the list endpoints.
#[derive(Deserialize)]
struct Envelope {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    affected_items: Vec<Value>,
    #[serde(default)]
    total_affected_items: u64,
    #[serde(default)]
    failed_items: Vec<FailedItem>,
}

#[derive(Deserialize)]
struct FailedItem {
    error: FailedError,
}

#[derive(Deserialize)]
struct FailedError {
    code: i64,
    #[serde(default)]
    message: String,
}

/// The agent was deleted from the manager between the listing and this request.
#[derive(Debug, thiserror::Error)]
#[error("{0}: the agent no longer exists")]
struct AgentGone(String);

#[derive(Default)]
struct Totals {
    agents: usize,
    packages: usize,
    files: usize,
    removed: usize,
    failed: Vec<String>,
}

pub async fn run(config: WazuhApiConfig, ctx: SourceContext) -> anyhow::Result<()> {
    let client = Client::new(&config, &ctx.tenant, ctx.cancel.clone(), ctx.emitter.usage().clone())?;
    // A restart (or reload) does not collect again before the interval has passed.
    let mut wait = match last_collection(&ctx).await? {
        Some(at) => (at + config.interval - Utc::now()).to_std().unwrap_or_default().min(config.interval),
        None => Duration::ZERO,
    };
    let mut failures = 0;
    loop {
        if !ctx.sleep(wait).await {
            return Ok(());
        }
        let started_at = Utc::now();
        let started = tokio::time::Instant::now();
        let (requests_before, throttled_before) = client.counters();
        let result = collect(&config, &ctx, &client).await;
        if ctx.cancel.is_cancelled() {
            return Ok(());
        }
        let (requests, throttled) = client.counters();
        let (requests, throttled) = (requests - requests_before, throttled - throttled_before);
        match result {
            Ok(t) if t.failed.is_empty() => {
                tracing::info!(tenant = %ctx.tenant, source = %ctx.source, agents = t.agents, packages = t.packages, files = t.files,
                    removed = t.removed, took = ?started.elapsed(), requests, rate_limited = throttled, "wazuh inventory collected");
                ctx.store.set_checkpoint(&ctx.tenant, &ctx.source, COLLECTED, started_at.to_rfc3339()).await?;
                failures = 0;
                wait = config.interval.saturating_sub(started.elapsed());
            }
            outcome => {
                let error = match outcome {
                    Ok(t) => format!("{} of {} agents failed; first: {}", t.failed.len(), t.agents, t.failed[0]),
                    Err(e) => format!("{e:#}"),
                };
                metrics::counter!("sluice_source_errors_total", "tenant" => ctx.tenant.to_string(), "source" => ctx.source.to_string())
                    .increment(1);
                failures += 1;
                wait = retry_delay(failures, config.interval);
                tracing::error!(tenant = %ctx.tenant, source = %ctx.source, error, took = ?started.elapsed(), requests,
                    rate_limited = throttled, retry_in = ?wait, "wazuh inventory collection incomplete");
            }
        }
    }
}

async fn last_collection(ctx: &SourceContext) -> anyhow::Result<Option<DateTime<Utc>>> {
    let Some(text) = ctx.store.checkpoint(&ctx.tenant, &ctx.source, COLLECTED).await? else { return Ok(None) };
    match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => Ok(Some(t.with_timezone(&Utc))),
        Err(e) => {
            tracing::warn!(tenant = %ctx.tenant, source = %ctx.source, error = %e, "saved collection time is unreadable; collecting now");
            Ok(None)
        }
    }
}

fn retry_delay(failures: u32, interval: Duration) -> Duration {
    RETRY_AFTER_FAILURE.saturating_mul(1 << failures.clamp(1, 16).saturating_sub(1)).min(interval)
}

/// One collection. An agent whose inventory cannot be read is named in `failed`; the others are
/// stored all the same.
async fn collect(config: &WazuhApiConfig, ctx: &SourceContext, client: &Client) -> anyhow::Result<Totals> {
    let agents = listing(client, AGENTS_PATH, &[("sort", "+id")], config.page_size).await?;
    let mut ids = Vec::with_capacity(agents.items.len());
    for agent in &agents.items {
        let id = agent.get("id").and_then(Value::as_str).filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
        ids.push(
            id.with_context(|| format!("{AGENTS_PATH}: an agent has no valid `id`: {}", crate::sinks::http::excerpt(&agent.to_string())))?
                .to_string(),
        );
    }
    let mut totals = Totals { agents: agents.items.len(), ..Totals::default() };
    let mut results = futures::stream::iter(agents.items)
        .map(|agent| collect_agent(config, ctx, client, agent))
        .buffer_unordered(config.parallelism.get());
    while let Some(result) = results.next().await {
        match result {
            Ok((packages, files)) => {
                totals.packages += packages;
                totals.files += files;
            }
            Err(_) if ctx.cancel.is_cancelled() => bail!("cancelled"),
            Err(e) => totals.failed.push(format!("{e:#}")),
        }
    }
    if agents.complete {
        totals.removed = ctx.store.wazuh_mark_removed(&ctx.tenant, &ctx.source, &ids).await?;
    } else {
        tracing::warn!(tenant = %ctx.tenant, source = %ctx.source,
            "the agent list kept changing while it was read; agents missing from it are not marked removed this time");
    }
    Ok(totals)
}

/// Reads one agent's inventory and stores it with the agent's record. Returns the packages and
/// files read.
async fn collect_agent(config: &WazuhApiConfig, ctx: &SourceContext, client: &Client, agent: Value) -> anyhow::Result<(usize, usize)> {
    let id = agent.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let inventory = match inventory(config, client, &id).await {
        Ok(inventory) => inventory,
        Err(e) => {
            // The record from the listing is current even when its inventory is not.
            ctx.store.wazuh_save_agent(&ctx.tenant, &ctx.source, agent, None).await?;
            return Err(e.context(format!("agent {id}")));
        }
    };
    let counts = inventory.as_ref().map_or((0, 0), |i| (i.packages.items.len(), i.files.items.len()));
    ctx.store.wazuh_save_agent(&ctx.tenant, &ctx.source, agent, inventory).await?;
    Ok(counts)
}

/// An agent's files, packages and OS; `None` if the agent was deleted meanwhile.
async fn inventory(config: &WazuhApiConfig, client: &Client, id: &str) -> anyhow::Result<Option<WazuhInventory>> {
    let no_data = || WazuhListing { items: Vec::new(), complete: true };
    // Sorted by path: an mtime changing between pages does not move files across them.
    let files = match listing(client, &format!("/syscheck/{id}"), &[("sort", "+file")], config.page_size).await {
        Err(e) if has_code(&e, NO_DATABASE) => no_data(),
        other => other?,
    };
    let packages = match listing(client, &format!("/syscollector/{id}/packages"), &[], config.page_size).await {
        Err(e) if has_code(&e, NO_DATABASE) => no_data(),
        Err(e) if e.is::<AgentGone>() => return Ok(None),
        other => other?,
    };
    let path = format!("/syscollector/{id}/os");
    let os = match client.get::<Envelope>(&path, &[]).await.and_then(|e| checked(e, &path)) {
        Ok(envelope) => envelope.data.affected_items.into_iter().next(),
        Err(e) if has_code(&e, NO_DATABASE) => None,
        Err(e) if e.is::<AgentGone>() => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(WazuhInventory { packages, files, os }))
}

/// Every item of a list endpoint, paged by `offset`/`limit`. Offsets shift when the list changes
/// meanwhile, which could skip or repeat items: a listing whose total moved, or whose items do not
/// add up to it, is read again, and after `LISTING_TRIES` kept as incomplete.
async fn listing(client: &Client, path: &str, extra: &[(&str, &str)], page_size: u32) -> anyhow::Result<WazuhListing> {
    let mut last = WazuhListing::default();
    for _ in 0..LISTING_TRIES {
        last = read_pages(client, path, extra, page_size).await?;
        if last.complete {
            break;
        }
        tracing::debug!(path, "the list changed while it was paged; reading it again");
    }
    Ok(last)
}

async fn read_pages(client: &Client, path: &str, extra: &[(&str, &str)], page_size: u32) -> anyhow::Result<WazuhListing> {
    let mut items: Vec<Value> = Vec::new();
    let mut total = None;
    let mut steady = true;
    loop {
        let mut query = vec![("offset", items.len().to_string()), ("limit", page_size.to_string())];
        query.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let page = checked(client.get::<Envelope>(path, &query).await?, path)?.data;
        steady &= total.is_none_or(|t| t == page.total_affected_items);
        total = Some(page.total_affected_items);
        let received = page.affected_items.len();
        items.extend(page.affected_items);
        if items.len() > MAX_ITEMS {
            bail!("{path}: more than {MAX_ITEMS} items");
        }
        if received == 0 || items.len() as u64 >= page.total_affected_items {
            break;
        }
    }
    let complete = steady && total == Some(items.len() as u64);
    Ok(WazuhListing { items, complete })
}

/// An envelope whose every item failed is an error: `AgentGone` for 1701, else the first failure.
fn checked(envelope: Envelope, path: &str) -> anyhow::Result<Envelope> {
    let data = &envelope.data;
    if data.affected_items.is_empty()
        && let Some(first) = data.failed_items.first()
    {
        if data.failed_items.iter().any(|f| f.error.code == NO_AGENT) {
            return Err(AgentGone(path.to_string()).into());
        }
        bail!("{path}: Wazuh error {}: {}", first.error.code, first.error.message);
    }
    Ok(envelope)
}

fn has_code(e: &anyhow::Error, code: i64) -> bool {
    e.downcast_ref::<Refused>().is_some_and(|r| r.code == Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(v: Value) -> Envelope {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn failed_items_are_errors_and_1701_means_gone() {
        let gone = envelope(serde_json::json!({"data": {"affected_items": [], "total_affected_items": 0, "total_failed_items": 1,
            "failed_items": [{"error": {"code": 1701, "message": "Agent does not exist"}, "id": ["009"]}]}, "error": 1}));
        assert!(checked(gone, "/syscollector/009/os").err().unwrap().is::<AgentGone>());
        let other = envelope(serde_json::json!({"data": {"affected_items": [],
            "failed_items": [{"error": {"code": 1000, "message": "boom"}, "id": ["009"]}]}, "error": 1}));
        assert_eq!(checked(other, "/x").err().unwrap().to_string(), "/x: Wazuh error 1000: boom");
        let fine = envelope(serde_json::json!({"data": {"affected_items": [{"a": 1}], "total_affected_items": 1}, "error": 0}));
        assert_eq!(checked(fine, "/x").unwrap().data.affected_items.len(), 1);
    }

    #[test]
    fn failed_collections_are_retried_sooner_than_the_interval() {
        let interval = Duration::from_secs(900);
        assert_eq!(retry_delay(1, interval), Duration::from_secs(60));
        assert_eq!(retry_delay(3, interval), Duration::from_secs(240));
        assert_eq!(retry_delay(30, interval), interval);
        assert_eq!(retry_delay(1, Duration::from_secs(5)), Duration::from_secs(5));
    }
}
