//! `type: idmefv2_http`: one IDMEFv2 message per HTTP POST (as Concerto SIEM and the IDMEFv2
//! HTTPS transport draft expect), `Content-Type: application/json`, optional HTTP Basic auth.
//!
//! 2xx: delivered. 408, 429, 5xx, timeouts and connection errors: retried with exponential
//! backoff and jitter (429 honours `Retry-After`); when the attempts run out the batch fails and
//! the sink worker keeps it in the outbox. Any other 4xx will never succeed: the event goes to the
//! dead-letter list with the answer, and counts as handled.

mod config;

use anyhow::bail;
use futures::StreamExt;
use futures::future::BoxFuture;
use reqwest::StatusCode;

pub use config::*;

use crate::encode::idmefv2;
use crate::event::Batch;
use crate::event::Event;
use crate::normalize::normalize_lossless;
use crate::settings::Secret;
use crate::sinks::{Sink, SinkContext, Written, http};

pub struct IdmefHttpSink {
    config: IdmefHttpConfig,
    http: reqwest::Client,
    ctx: SinkContext,
}

enum Outcome {
    Delivered,
    /// Refused for good; the reason.
    Refused(String),
}

impl IdmefHttpSink {
    pub fn new(config: IdmefHttpConfig, ctx: SinkContext) -> anyhow::Result<Self> {
        let tls = crate::settings::tls::TlsConfig { ca_file: None, insecure: config.tls_insecure };
        let http = crate::settings::tls::http_client(&tls, config.timeout)?;
        Ok(IdmefHttpSink { config, http, ctx })
    }

    async fn post(&self, body: Vec<u8>) -> anyhow::Result<Outcome> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.post(&self.config.url).header("Content-Type", "application/json").body(body.clone());
            if let Some(user) = &self.config.username {
                request = request.basic_auth(user, self.config.password.as_ref().map(Secret::expose));
            }
            let (retryable, wait, error) = match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(Outcome::Delivered),
                Ok(r) => {
                    let status = r.status();
                    let wait = http::retry_after(r.headers());
                    let text = http::excerpt(&r.text().await.unwrap_or_default());
                    let retryable =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT;
                    if !retryable {
                        return Ok(Outcome::Refused(format!("{status}: {text}")));
                    }
                    (true, wait, format!("{status}: {text}"))
                }
                Err(e) => (true, None, e.to_string()),
            };
            if !retryable || attempt >= self.config.max_attempts {
                bail!("POST {}: {error} (after {attempt} attempts)", self.config.url);
            }
            let wait = self.ctx.policy.retry.backoff(attempt, wait);
            tracing::debug!(sink = %self.ctx.name, error, retry_in = ?wait, "IDMEFv2 POST failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

impl Sink for IdmefHttpSink {
    fn events_in_flight(&self) -> Option<usize> {
        Some(self.config.concurrency.get() * self.ctx.policy.batch.max_events.get())
    }

    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        let this: &IdmefHttpSink = self;
        Box::pin(async move {
            let events: Vec<&Event> = batches.iter().flat_map(|b| b.iter()).collect();
            let mut bodies = Vec::with_capacity(events.len());
            for (i, event) in events.iter().enumerate() {
                let model = normalize_lossless(event);
                let message =
                    if this.config.version == idmefv2::VERSION_V04 { idmefv2::message_v04(&model) } else { idmefv2::message(&model) };
                bodies.push((i, serde_json::to_vec(&message)?));
            }
            let results: Vec<(usize, anyhow::Result<Outcome>)> = futures::stream::iter(bodies)
                .map(|(i, body)| async move { (i, this.post(body).await) })
                .buffer_unordered(this.config.concurrency.get())
                .collect()
                .await;
            let mut first_error = None;
            let mut written = Written::default();
            for (i, result) in results {
                let event = events[i];
                match result {
                    Ok(Outcome::Delivered) => {}
                    Ok(Outcome::Refused(reason)) => this.ctx.dead_letter(event, &reason, &mut written).await?,
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            // Delivered messages are repeated when the batch is retried; their IDMEFv2 ids are
            // stable, so a receiver can recognise them.
            match first_error {
                Some(e) => Err(e),
                None => Ok(written),
            }
        })
    }
}
