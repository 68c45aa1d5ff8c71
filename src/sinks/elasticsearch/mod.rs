//! `type: elasticsearch`: Elasticsearch or OpenSearch through the Bulk API.
//!
//! Every document is a `create` with `_id` = the event's stable id, so a replay (after a crash,
//! a timeout, a reset) can never index an event twice: the second `create` answers 409, which
//! counts as delivered. Index names may carry the date the event was received
//! (`sluice-%YYYY.%MM.%DD`) and the tenant (`%TENANCY`); with `mode: data_stream` the name is a
//! data stream (`logs-sluice-default`), which accepts only `create` and needs `@timestamp`.
//!
//! Bulk answers are read item by item: 201 and 409 delivered; 429 and 5xx retried alone with
//! backoff, dead-lettered once `retry.max_attempts` is spent; any other 4xx (a mapping error)
//! dead-lettered at once with ES's reason. A whole request answered 429/5xx, or lost to a
//! timeout or reset, is retried, then the write fails and the events wait in the outbox; 413
//! halves the request; 401/403 fail the sink until the credentials are fixed. When no connection
//! can be made at all (refused, unreachable, connect timeout, TLS handshake), the write fails at
//! once, without retrying, and the events wait in the outbox. The first request of a write that
//! fails ends the write: the others in flight are dropped.

mod config;

use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

pub use config::*;

use crate::encode::Format;
use crate::event::Batch;
use crate::event::Event;
use crate::settings::Secret;
use crate::sinks::splunk_hec::Compression;
use crate::sinks::{Sink, SinkContext, Written, http};

pub struct EsSink {
    config: EsConfig,
    ctx: SinkContext,
    client: reqwest::Client,
    /// `config.url` without credentials; those it held are sent as HTTP Basic.
    endpoint: http::Endpoint,
    bulk_url: String,
    base_url: String,
    items: Arc<Items>,
}

/// Turns events into bulk items; shared with the encoding threads.
struct Items(EsConfig);

/// One bulk item: the event's position in the write, its action + document lines, and how
/// often it was answered with a transient error.
struct Item {
    index: usize,
    lines: Vec<u8>,
    attempts: u32,
}

/// What became of one bulk request.
#[derive(Default)]
struct Outcome {
    /// Requests to send again (items answered with a transient error, or a halved request).
    again: Vec<Vec<Item>>,
    /// (event position, reason) refused for good.
    dead: Vec<(usize, String)>,
}

impl EsSink {
    pub fn new(config: EsConfig, ctx: SinkContext) -> anyhow::Result<Self> {
        let client = crate::settings::tls::http_client(&config.tls, config.timeout)?;
        let endpoint = http::Endpoint::parse(&config.url)?;
        let base_url = endpoint.url.trim_end_matches('/').to_string();
        let mut bulk_url = reqwest::Url::parse(&format!("{base_url}/_bulk")).context("bulk URL")?;
        if let Some(p) = &config.pipeline {
            bulk_url.query_pairs_mut().append_pair("pipeline", p);
        }
        let bulk_url = bulk_url.to_string();
        Ok(EsSink { items: Arc::new(Items(config.clone())), config, ctx, client, endpoint, bulk_url, base_url })
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(key) = &self.config.api_key {
            request.header("Authorization", format!("ApiKey {}", key.expose()))
        } else if let Some(user) = &self.config.username {
            request.basic_auth(user, self.config.password.as_ref().map(Secret::expose))
        } else {
            self.endpoint.authorize(request)
        }
    }

    fn body(&self, items: &[Item]) -> anyhow::Result<Vec<u8>> {
        let size: usize = items.iter().map(|i| i.lines.len()).sum();
        let mut body = Vec::with_capacity(size);
        items.iter().for_each(|i| body.extend_from_slice(&i.lines));
        Ok(match self.config.compression {
            Compression::None => body,
            Compression::Gzip => {
                use std::io::Write;
                let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(size / 4), flate2::Compression::fast());
                gz.write_all(&body)?;
                gz.finish()?
            }
        })
    }

    /// Sends one bulk request, retrying whole-request failures, and sorts its items.
    async fn send(&self, items: Vec<Item>) -> anyhow::Result<Outcome> {
        let body = self.body(&items)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request =
                self.authorize(self.client.post(&self.bulk_url)).header("Content-Type", "application/x-ndjson").body(body.clone());
            if self.config.compression == Compression::Gzip {
                request = request.header("Content-Encoding", "gzip");
            }
            let (error, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = http::retry_after(response.headers());
                    let text = response.text().await.unwrap_or_default();
                    match status.as_u16() {
                        200..=299 => return self.sort_items(items, &text),
                        413 => return Ok(halve(items, format!("HTTP 413: {}", http::excerpt(&text)))),
                        401 | 403 => bail!("Elasticsearch refused the credentials: HTTP {status}: {}", http::excerpt(&text)),
                        408 | 429 | 500..=599 => (format!("HTTP {status}: {}", http::excerpt(&text)), retry_after),
                        // A request-level 400 (malformed body) names no item: find the one.
                        400 => return Ok(halve(items, format!("HTTP 400: {}", http::excerpt(&text)))),
                        _ => bail!("POST {}: HTTP {status}: {}", self.bulk_url, http::excerpt(&text)),
                    }
                }
                // Elasticsearch is down or unreachable: the batch waits in the outbox, not here.
                Err(e) if http::is_unreachable(&e) => bail!("POST {}: {}", self.bulk_url, http::error_text(&e)),
                Err(e) => (http::error_text(&e), None),
            };
            if attempt >= self.ctx.policy.retry.max_attempts {
                bail!("POST {}: {error} (after {attempt} attempts)", self.bulk_url);
            }
            let wait = self.ctx.policy.retry.backoff(attempt, retry_after);
            tracing::debug!(sink = %self.ctx.name, error, retry_in = ?wait, "bulk request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn sort_items(&self, items: Vec<Item>, text: &str) -> anyhow::Result<Outcome> {
        #[derive(Deserialize)]
        struct Reply {
            errors: bool,
            items: Vec<Value>,
        }
        let reply: Reply = serde_json::from_str(text).with_context(|| format!("unreadable bulk answer: {}", http::excerpt(text)))?;
        let mut outcome = Outcome::default();
        let mut again = Vec::new();
        if !reply.errors {
            return Ok(outcome);
        }
        if reply.items.len() != items.len() {
            bail!("bulk answer has {} items for {} sent", reply.items.len(), items.len());
        }
        for (mut item, result) in items.into_iter().zip(reply.items) {
            let result = result.as_object().and_then(|o| o.values().next()).cloned().unwrap_or(Value::Null);
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
            let reason = || {
                let error = &result["error"];
                format!(
                    "{status} {}: {}",
                    error.get("type").and_then(Value::as_str).unwrap_or("error"),
                    error.get("reason").and_then(Value::as_str).unwrap_or("")
                )
            };
            match status {
                // 409 on create: the document is already there (a replay).
                200..=299 | 409 => {}
                429 | 500..=599 => {
                    item.attempts += 1;
                    if item.attempts >= self.ctx.policy.retry.max_attempts {
                        outcome.dead.push((item.index, format!("still refused after {} attempts: {}", item.attempts, reason())));
                    } else {
                        again.push(item);
                    }
                }
                _ => outcome.dead.push((item.index, reason())),
            }
        }
        if !again.is_empty() {
            outcome.again.push(again);
        }
        Ok(outcome)
    }

    async fn write_events(&self, batches: &[Batch]) -> anyhow::Result<Written> {
        let events: Vec<&Event> = batches.iter().flat_map(|b| b.iter()).collect();
        let encoder = self.items.clone();
        let items: Vec<(Item, usize)> = crate::sinks::encode_all(batches, Arc::new(move |e: &Event| encoder.lines(e)))
            .await?
            .into_iter()
            .enumerate()
            .map(|(index, lines)| {
                let size = lines.len();
                (Item { index, lines, attempts: 0 }, size)
            })
            .collect();
        let mut todo = self.ctx.policy.batch.split(items);
        let mut written = Written::default();
        let mut round = 0u32;
        while !todo.is_empty() {
            if round > 0 {
                // Items answered 429/5xx: give the cluster a moment before their next try.
                tokio::time::sleep(self.ctx.policy.retry.backoff(round, None)).await;
            }
            round += 1;
            let mut outcomes = futures::stream::iter(std::mem::take(&mut todo))
                .map(|items| self.send(items))
                .buffer_unordered(self.config.concurrency.get());
            // The first request that fails ends the write (dropping the others in flight).
            while let Some(outcome) = outcomes.next().await {
                let outcome = outcome?;
                for (i, reason) in outcome.dead {
                    self.ctx.dead_letter(events[i], &format!("Elasticsearch refused the document: {reason}"), &mut written).await?;
                }
                todo.extend(outcome.again);
            }
        }
        Ok(written)
    }
}

impl Items {
    /// The action line and document of one event.
    fn lines(&self, event: &Event) -> Vec<u8> {
        let mut index = String::new();
        self.0.index.render_key(event, &mut index);
        let index = index.to_lowercase();
        let mut lines = Vec::with_capacity(event.raw.get().len() * 2 + 128);
        lines.extend_from_slice(b"{\"create\":{\"_index\":");
        serde_json::to_writer(&mut lines, &index).expect("writing to a Vec cannot fail");
        lines.extend_from_slice(b",\"_id\":");
        serde_json::to_writer(&mut lines, &event.id).expect("writing to a Vec cannot fail");
        lines.extend_from_slice(b"}}\n");
        if self.0.mode == Mode::DataStream && !matches!(self.0.format, Format::Ecs) {
            // A data stream needs `@timestamp` at the top level.
            let mut doc = Vec::new();
            self.0.format.encode_document(event, None, &mut doc);
            let mut value: Value = serde_json::from_slice(&doc).unwrap_or(Value::Null);
            if let Some(map) = value.as_object_mut() {
                map.entry("@timestamp").or_insert_with(|| Value::String(event.received_at.to_rfc3339()));
            } else {
                value = serde_json::json!({"@timestamp": event.received_at.to_rfc3339(), "value": value});
            }
            serde_json::to_writer(&mut lines, &value).expect("writing to a Vec cannot fail");
        } else {
            self.0.format.encode_document(event, None, &mut lines);
        }
        lines.push(b'\n');
        lines
    }
}

/// A refusal that names no item: halve until it stands alone, then dead-letter it.
fn halve(mut items: Vec<Item>, what: String) -> Outcome {
    if items.len() == 1 {
        return Outcome { again: vec![], dead: vec![(items[0].index, what)] };
    }
    let second = items.split_off(items.len() / 2);
    Outcome { again: vec![items, second], dead: vec![] }
}

impl Sink for EsSink {
    fn events_in_flight(&self) -> Option<usize> {
        Some(self.config.concurrency.get() * self.ctx.policy.batch.max_events.get())
    }

    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        Box::pin(self.write_events(batches))
    }

    /// `GET /` (cluster info): reachability and credentials; writes nothing.
    fn check(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let response = self
                .authorize(self.client.get(&self.base_url))
                .send()
                .await
                .map_err(|e| anyhow!("GET {}: {}", self.base_url, http::error_text(&e)))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let text = response.text().await.unwrap_or_default();
            Err(anyhow!("cluster info: HTTP {status}: {}", http::excerpt(&text)))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_emulators::elasticsearch::{EsConfig as Emu, EsEmulator};

    use std::time::Duration;

    use super::*;
    use crate::sinks::SinkSettings;
    use crate::sinks::policy::SinkPolicy;
    use crate::store::Store;

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let raw = format!("{{\"n\":{i},\"severity\":\"high\",\"pad\":\"{}\"}}", "x".repeat(200));
                Event::hashed(
                    "acme".into(),
                    "src".into(),
                    "json".into(),
                    chrono::Utc::now(),
                    serde_json::value::RawValue::from_string(raw).unwrap(),
                )
            })
            .collect()
    }

    fn sink(url: &str, dir: &std::path::Path, yaml: &str) -> EsSink {
        let config: EsConfig = serde_saphyr::from_str(&format!("url: {url}\n{yaml}")).unwrap();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        let mut policy = SinkPolicy::default();
        policy.retry.initial_backoff = Duration::from_millis(5);
        EsSink::new(config, SinkContext { name: "es".into(), store: Store::open(dir).unwrap(), policy }).unwrap()
    }

    #[tokio::test]
    async fn a_request_over_the_size_limit_is_halved_and_a_lone_oversized_document_dead_lettered() {
        let es = EsEmulator::start(Emu { max_content_length: 20_000, ..Emu::default() }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&es.url(), dir.path(), "index: small\nformat: raw");
        let mut batch = events(300);
        let huge = format!("{{\"n\":999,\"pad\":\"{}\"}}", "y".repeat(30_000));
        batch.push(Event::hashed(
            "acme".into(),
            "src".into(),
            "json".into(),
            chrono::Utc::now(),
            serde_json::value::RawValue::from_string(huge).unwrap(),
        ));
        let written = sink.write(&[Arc::new(batch)]).await.unwrap();
        assert_eq!(es.doc_count(), 300);
        assert_eq!(written.dead_lettered, 1);
        assert!(written.dead_letter_reason.unwrap().contains("413"));
    }

    #[tokio::test]
    async fn ecs_documents_go_to_a_data_stream_with_an_api_key() {
        let es = EsEmulator::start(Emu { api_key: Some("a2V5OnNlY3JldA==".into()), ..Emu::default() }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&es.url(), dir.path(), "index: logs-sluice-%TENANCY\nmode: data_stream\napi_key: a2V5OnNlY3JldA==");
        assert!(sink.check().await.is_ok());
        sink.write(&[Arc::new(events(50))]).await.unwrap();
        let docs = es.docs("logs-sluice-acme");
        assert_eq!(docs.len(), 50);
        assert_eq!(docs[0].1["event"]["severity"], 75, "ECS by default");
        assert!(docs[0].1["@timestamp"].is_string());

        let mut wrong = self::sink(&es.url(), dir.path(), "api_key: d3Jvbmc=");
        assert!(wrong.check().await.is_err());
        let err = wrong.write(&[Arc::new(events(1))]).await.unwrap_err();
        assert!(format!("{err:#}").contains("credentials"), "{err:#}");
    }
}
