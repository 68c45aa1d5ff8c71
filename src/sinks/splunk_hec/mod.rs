//! `type: splunk_hec`: Splunk HTTP Event Collector, `/services/collector/event`.
//!
//! Events go as concatenated JSON envelopes (`{"time","host","source","sourcetype","index",
//! "event","fields"}`), split into requests by `batch.max_events`/`batch.max_bytes`, up to
//! `concurrency` requests at once, optionally gzip-compressed, with `Authorization: Splunk`.
//!
//! Every HEC answer is handled as it means:
//! - 200 code 0: indexed (with indexer acknowledgement: once its `ackId` is reported true).
//! - 400 with `invalid-event-number` k (codes 6, 12, 13, 15): HEC indexed the events before k;
//!   event k is dead-lettered with the reason; the rest is sent again.
//! - any other 400, and 413: the request is halved until the refused event stands alone, which
//!   is then dead-lettered.
//! - 500, 503 (codes 8, 9, 18–20), 429, timeouts, resets: retried with backoff
//!   (`retry.max_attempts`), then the write fails and the events wait in the outbox.
//! - no connection at all (refused, unreachable, connect timeout, TLS handshake): HEC is down;
//!   the write fails at once, without retrying, and the events wait in the outbox.
//! - 401/403 (codes 1–4), code 7 (index not allowed for the token), 10/11/14 (channel or
//!   acknowledgement settings): configuration problems. The write fails with HEC's text, the
//!   sink turns `failed`, and the events wait in the outbox until the configuration is fixed.
//!
//! The first request of a write that fails ends the write: the others in flight are dropped,
//! and the outbox retries the whole batch with backoff.
//!
//! With `acknowledgements.enabled`, requests carry a channel and count as delivered only when
//! `/services/collector/ack` reports their `ackId` true; requests not acknowledged within
//! `acknowledgements.timeout` are sent again (at-least-once).

mod config;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::time::Instant;

pub use config::*;

use crate::event::Batch;
use crate::event::Event;
use crate::normalize::normalize_lossless;
use crate::sinks::{Sink, SinkContext, Written, http};

pub struct HecSink {
    config: HecConfig,
    ctx: SinkContext,
    client: reqwest::Client,
    /// These three are built from the URL without its credentials, so messages may show them.
    event_url: String,
    ack_url: String,
    health_url: String,
    /// The channel of this sink's requests (indexer acknowledgement).
    channel: String,
    envelopes: Arc<Envelopes>,
}

/// Turns events into HEC envelopes; shared with the encoding threads.
struct Envelopes {
    config: HecConfig,
    default_host: String,
}

/// One HTTP request's worth of encoded envelopes: (index into the write's events, bytes).
struct Request {
    items: Vec<(usize, Vec<u8>)>,
    /// Times it was sent and not acknowledged.
    unacked: u32,
}

/// What became of one request.
enum Outcome {
    /// Indexed; with acknowledgement, the ackId to wait for.
    Indexed(Request, Option<u64>),
    /// Part of it is settled; the rest must go again.
    Again { dead: Option<(usize, String)>, again: Vec<Request> },
}

impl HecSink {
    pub fn new(config: HecConfig, ctx: SinkContext) -> anyhow::Result<Self> {
        let client = crate::settings::tls::http_client(&config.tls, config.timeout)?;
        let endpoint = http::Endpoint::parse(&config.url)?;
        let base = endpoint.url.trim_end_matches('/');
        Ok(HecSink {
            event_url: format!("{base}/services/collector/event"),
            ack_url: format!("{base}/services/collector/ack"),
            health_url: format!("{base}/services/collector/health"),
            channel: uuid::Uuid::new_v4().to_string(),
            envelopes: Arc::new(Envelopes { config: config.clone(), default_host: crate::service::hostname() }),
            client,
            config,
            ctx,
        })
    }
}

impl Envelopes {
    /// One event's envelope, newline-terminated (HEC accepts whitespace between objects).
    fn envelope(&self, event: &Event) -> Vec<u8> {
        let format = self.config.format;
        let model = format.is_normalized().then(|| normalize_lossless(event));
        let time = model.as_ref().map(|m| m.time).unwrap_or(event.received_at);
        let host = self
            .config
            .host
            .as_deref()
            .or_else(|| model.as_ref().and_then(|m| m.analyzer.hostname.as_deref()))
            .unwrap_or(&self.default_host);
        let mut doc = Vec::with_capacity(event.raw.get().len() * 2 + 256);
        format.encode_document(event, model.as_ref(), &mut doc);
        let mut out = Vec::with_capacity(doc.len() + 256);
        out.extend_from_slice(format!("{{\"time\":{}.{:03},\"host\":", time.timestamp(), time.timestamp_subsec_millis()).as_bytes());
        serde_json::to_writer(&mut out, host).expect("writing to a Vec cannot fail");
        out.extend_from_slice(b",\"source\":");
        match &self.config.source {
            Some(s) => serde_json::to_writer(&mut out, s),
            None => serde_json::to_writer(&mut out, &format!("sluice:{}", event.source)),
        }
        .expect("writing to a Vec cannot fail");
        out.extend_from_slice(b",\"sourcetype\":");
        serde_json::to_writer(&mut out, &self.config.sourcetype).expect("writing to a Vec cannot fail");
        if let Some(index) = &self.config.index {
            out.extend_from_slice(b",\"index\":");
            serde_json::to_writer(&mut out, index).expect("writing to a Vec cannot fail");
        }
        out.extend_from_slice(b",\"event\":");
        if format.is_json() {
            out.extend_from_slice(&doc);
        } else {
            serde_json::to_writer(&mut out, &String::from_utf8_lossy(&doc)).expect("writing to a Vec cannot fail");
        }
        // Indexed fields: flat strings only (nested values are HEC error 15).
        out.extend_from_slice(b",\"fields\":");
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({"tenant": &*event.tenant, "vendor": &*event.vendor, "sluice_source": &*event.source, "sluice_id": event.id}),
        )
        .expect("writing to a Vec cannot fail");
        out.extend_from_slice(b"}\n");
        out
    }
}

impl HecSink {
    fn body(&self, request: &Request) -> anyhow::Result<Vec<u8>> {
        let size: usize = request.items.iter().map(|(_, b)| b.len()).sum();
        match self.config.compression {
            Compression::None => {
                let mut body = Vec::with_capacity(size);
                request.items.iter().for_each(|(_, b)| body.extend_from_slice(b));
                Ok(body)
            }
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(size / 4), flate2::Compression::fast());
                for (_, b) in &request.items {
                    gz.write_all(b)?;
                }
                Ok(gz.finish()?)
            }
        }
    }

    /// Sends one request, retrying transient failures, and says what became of it.
    async fn send(&self, request: Request) -> anyhow::Result<Outcome> {
        let body = self.body(&request)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .client
                .post(&self.event_url)
                .header("Authorization", format!("Splunk {}", self.config.token.expose()))
                .header("Content-Type", "application/json")
                .body(body.clone());
            if self.config.compression == Compression::Gzip {
                req = req.header("Content-Encoding", "gzip");
            }
            if self.config.acknowledgements.enabled {
                req = req.header("X-Splunk-Request-Channel", &self.channel);
            }
            let (error, retry_after) = match req.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = http::retry_after(response.headers());
                    let text = response.text().await.unwrap_or_default();
                    let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let code = reply.get("code").and_then(Value::as_i64);
                    let what = format!("HTTP {status}: {}", http::excerpt(&text));
                    match (status.as_u16(), code) {
                        (200..=299, Some(0) | None) => {
                            let ack = reply.get("ackId").and_then(Value::as_u64);
                            if self.config.acknowledgements.enabled && ack.is_none() {
                                bail!("acknowledgements are enabled but HEC returned no ackId ({what}); is useACK on for this token?");
                            }
                            return Ok(Outcome::Indexed(request, ack));
                        }
                        (400, Some(6 | 12 | 13 | 15)) if reply.get("invalid-event-number").is_some() => {
                            return Ok(split_at_invalid(request, &reply, &what));
                        }
                        (400, Some(code @ (7 | 10 | 11 | 14 | 16))) | (401 | 403, Some(code)) => {
                            bail!("Splunk refused the configuration (code {code}): {what}");
                        }
                        (401 | 403, None) => bail!("Splunk refused the credentials: {what}"),
                        (408 | 429 | 500..=599, _) => (what, retry_after),
                        (400..=499, _) => return Ok(halve(request, what)),
                        _ => (what, retry_after),
                    }
                }
                // HEC is down or unreachable: the batch waits in the outbox, not here.
                Err(e) if http::is_unreachable(&e) => bail!("POST {}: {}", self.event_url, http::error_text(&e)),
                Err(e) => (http::error_text(&e), None),
            };
            if attempt >= self.ctx.policy.retry.max_attempts {
                bail!("POST {}: {error} (after {attempt} attempts)", self.event_url);
            }
            let wait = self.ctx.policy.retry.backoff(attempt, retry_after);
            tracing::debug!(sink = %self.ctx.name, error, retry_in = ?wait, "HEC request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Polls `/services/collector/ack` until every request is acknowledged or the timeout
    /// passes. Returns the requests still unacknowledged.
    async fn wait_for_acks(&self, mut waiting: HashMap<u64, Request>) -> anyhow::Result<Vec<Request>> {
        let deadline = Instant::now() + self.config.acknowledgements.timeout;
        while !waiting.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(self.config.acknowledgements.poll_interval).await;
            let ids: Vec<u64> = waiting.keys().copied().collect();
            let response = self
                .client
                .post(&self.ack_url)
                .header("Authorization", format!("Splunk {}", self.config.token.expose()))
                .header("X-Splunk-Request-Channel", &self.channel)
                .json(&serde_json::json!({ "acks": ids }))
                .send()
                .await;
            let reply: Value = match response {
                Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    if status.as_u16() == 400 {
                        bail!("HEC acknowledgement query refused: HTTP {status}: {}", http::excerpt(&text));
                    }
                    tracing::debug!(sink = %self.ctx.name, %status, "HEC acknowledgement query failed; polling again");
                    continue;
                }
                Err(e) if http::is_unreachable(&e) => bail!("POST {}: {}", self.ack_url, http::error_text(&e)),
                Err(e) => {
                    tracing::debug!(sink = %self.ctx.name, error = %http::error_text(&e), "HEC acknowledgement query failed; polling again");
                    continue;
                }
            };
            if let Some(acks) = reply.get("acks").and_then(Value::as_object) {
                for (id, done) in acks {
                    if done.as_bool() == Some(true)
                        && let Ok(id) = id.parse::<u64>()
                    {
                        waiting.remove(&id);
                    }
                }
            }
        }
        Ok(waiting.into_values().collect())
    }

    async fn write_events(&self, batches: &[Batch]) -> anyhow::Result<Written> {
        let events: Vec<&Event> = batches.iter().flat_map(|b| b.iter()).collect();
        let envelopes = self.envelopes.clone();
        let encoded: Vec<((usize, Vec<u8>), usize)> = crate::sinks::encode_all(batches, Arc::new(move |e: &Event| envelopes.envelope(e)))
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| {
                let len = bytes.len();
                ((i, bytes), len)
            })
            .collect();
        let mut todo: Vec<Request> = self.ctx.policy.batch.split(encoded).into_iter().map(|items| Request { items, unacked: 0 }).collect();
        let mut written = Written::default();
        while !todo.is_empty() {
            let mut outcomes =
                futures::stream::iter(std::mem::take(&mut todo)).map(|r| self.send(r)).buffer_unordered(self.config.concurrency.get());
            let mut waiting = HashMap::new();
            // The first request that fails ends the write (dropping the others in flight).
            while let Some(outcome) = outcomes.next().await {
                match outcome? {
                    Outcome::Indexed(request, Some(ack)) if self.config.acknowledgements.enabled => {
                        waiting.insert(ack, request);
                    }
                    Outcome::Indexed(..) => {}
                    Outcome::Again { dead, again } => {
                        if let Some((i, reason)) = dead {
                            self.ctx.dead_letter(events[i], &reason, &mut written).await?;
                        }
                        todo.extend(again);
                    }
                }
            }
            for mut request in self.wait_for_acks(waiting).await? {
                request.unacked += 1;
                if request.unacked >= self.ctx.policy.retry.max_attempts {
                    bail!(
                        "HEC did not acknowledge a request of {} events within {:?}, {} times",
                        request.items.len(),
                        self.config.acknowledgements.timeout,
                        request.unacked
                    );
                }
                tracing::debug!(sink = %self.ctx.name, events = request.items.len(), "request not acknowledged in time; sending it again");
                todo.push(request);
            }
        }
        Ok(written)
    }
}

/// HEC indexed the events before `invalid-event-number`; that one is refused, the rest goes
/// again.
fn split_at_invalid(mut request: Request, reply: &Value, what: &str) -> Outcome {
    let k = reply.get("invalid-event-number").and_then(Value::as_u64).unwrap_or(0) as usize;
    if k >= request.items.len() {
        return halve(request, what.to_string());
    }
    let rest = request.items.split_off(k + 1);
    let (index, _) = request.items.pop().expect("k is in range");
    let again = if rest.is_empty() { vec![] } else { vec![Request { items: rest, unacked: 0 }] };
    Outcome::Again { dead: Some((index, format!("Splunk HEC refused the event: {what}"))), again }
}

/// A refusal that names no event: halve until the refused one stands alone.
fn halve(mut request: Request, what: String) -> Outcome {
    if request.items.len() == 1 {
        let (index, _) = request.items.pop().expect("one item");
        return Outcome::Again { dead: Some((index, format!("Splunk HEC refused the event: {what}"))), again: vec![] };
    }
    let second = request.items.split_off(request.items.len() / 2);
    Outcome::Again { dead: None, again: vec![Request { items: request.items, unacked: 0 }, Request { items: second, unacked: 0 }] }
}

impl Sink for HecSink {
    fn events_in_flight(&self) -> Option<usize> {
        Some(self.config.concurrency.get() * self.ctx.policy.batch.max_events.get())
    }

    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        Box::pin(self.write_events(batches))
    }

    /// `GET /services/collector/health` with the token: checks HEC and the token, writes nothing.
    fn check(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let response = self
                .client
                .get(&self.health_url)
                .header("Authorization", format!("Splunk {}", self.config.token.expose()))
                .send()
                .await
                .map_err(|e| anyhow!("GET {}: {}", self.health_url, http::error_text(&e)))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status.is_success() { Ok(()) } else { Err(anyhow!("HEC health: HTTP {status}: {}", http::excerpt(&text))) }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sluice_emulators::splunk_hec::{HecConfig as Emu, HecEmulator};

    use std::time::Duration;

    use super::*;
    use crate::sinks::policy::SinkPolicy;
    use crate::store::Store;

    fn event(raw: &str) -> Event {
        Event::hashed(
            "acme".into(),
            "src".into(),
            "json".into(),
            chrono::Utc::now(),
            serde_json::value::RawValue::from_string(raw.into()).unwrap(),
        )
    }

    fn sink(url: &str, dir: &std::path::Path, yaml: &str) -> HecSink {
        let config: HecConfig =
            serde_saphyr::from_str(&format!("url: {url}\ntoken: \"00000000-0000-0000-0000-000000000000\"\nformat: raw\n{yaml}")).unwrap();
        let mut policy = SinkPolicy::default();
        policy.retry.initial_backoff = Duration::from_millis(5);
        let ctx = SinkContext { name: "hec".into(), store: Store::open(dir).unwrap(), policy };
        HecSink::new(config, ctx).unwrap()
    }

    #[tokio::test]
    async fn a_blank_event_is_dead_lettered_and_the_rest_of_its_request_still_indexed() {
        let hec = HecEmulator::start(Emu::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&hec.url(), dir.path(), "");
        // HEC answers `"event": ""` with code 13 and the event's position.
        let events = vec![event("{\"n\":1}"), event("{\"n\":2}"), event("\"\""), event("{\"n\":4}"), event("{\"n\":5}")];
        let written = sink.write(&[Arc::new(events)]).await.unwrap();
        assert_eq!(written.dead_lettered, 1);
        assert!(written.dead_letter_reason.unwrap().contains("cannot be blank"));
        let indexed: Vec<i64> = hec.events().iter().map(|e| e["event"]["n"].as_i64().unwrap()).collect();
        assert_eq!(indexed, [1, 2, 4, 5], "before and after the refused one, each once");
        let dead = sink.ctx.store.dead_letters("hec").await.unwrap();
        assert_eq!(dead[0].0.raw.get(), "\"\"");
    }

    #[tokio::test]
    async fn wrong_token_fails_the_write_and_the_health_check_without_dead_letters() {
        let hec = HecEmulator::start(Emu { token: "right".into(), ..Emu::default() }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&hec.url(), dir.path(), "");
        let err = sink.write(&[Arc::new(vec![event("{}")])]).await.unwrap_err();
        assert!(format!("{err:#}").contains("Invalid token"), "{err:#}");
        assert!(sink.check().await.is_err());
        assert!(sink.ctx.store.dead_letters("hec").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn with_acknowledgements_a_write_returns_only_once_hec_acknowledged() {
        let hec = HecEmulator::start(Emu { ack: true, ack_delay: Duration::from_millis(200), ..Emu::default() }).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&hec.url(), dir.path(), "acknowledgements: {enabled: true, poll_interval: 20ms}\ncompression: gzip");
        let began = std::time::Instant::now();
        let events: Vec<Event> = (0..2500).map(|n| event(&format!("{{\"n\":{n}}}"))).collect();
        sink.write(&[Arc::new(events)]).await.unwrap();
        assert!(began.elapsed() >= Duration::from_millis(200), "returned before the acknowledgement");
        assert_eq!((hec.event_count(), hec.pending_acks()), (2500, 0));
        assert!(sink.check().await.is_ok());
    }
}
