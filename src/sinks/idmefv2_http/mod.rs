//! `type: idmefv2_http`: one IDMEFv2 message per HTTP POST (as Concerto SIEM and the IDMEFv2
//! HTTPS transport draft expect), `Content-Type: application/json`, optional HTTP Basic auth
//! (`username`/`password`, or credentials in the URL).
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
    /// `config.url` without credentials; those it held are sent as HTTP Basic.
    endpoint: http::Endpoint,
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
        let endpoint = http::Endpoint::parse(&config.url)?;
        Ok(IdmefHttpSink { config, endpoint, http, ctx })
    }

    /// HTTP Basic from `username`/`password`, or from the URL's credentials.
    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.username {
            Some(user) => request.basic_auth(user, self.config.password.as_ref().map(Secret::expose)),
            None => self.endpoint.authorize(request),
        }
    }

    async fn post(&self, body: Vec<u8>) -> anyhow::Result<Outcome> {
        let url = &self.endpoint.url;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.authorize(self.http.post(url).header("Content-Type", "application/json").body(body.clone()));
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
                Err(e) => (true, None, http::error_text(&e)),
            };
            if !retryable || attempt >= self.config.max_attempts {
                bail!("POST {url}: {error} (after {attempt} attempts)");
            }
            let wait = self.ctx.policy.retry.backoff(attempt, wait);
            tracing::debug!(sink = %self.ctx.name, error, retry_in = ?wait, "IDMEFv2 POST failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

impl Sink for IdmefHttpSink {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::http::{HeaderMap, StatusCode};

    use super::*;
    use crate::sinks::SinkSettings;
    use crate::sinks::policy::SinkPolicy;
    use crate::store::Store;

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                Event::hashed(
                    "acme".into(),
                    "src".into(),
                    "json".into(),
                    chrono::Utc::now(),
                    serde_json::value::RawValue::from_string(format!("{{\"n\":{i},\"severity\":\"high\"}}")).unwrap(),
                )
            })
            .collect()
    }

    fn sink(url: &str, dir: &std::path::Path) -> IdmefHttpSink {
        let config: IdmefHttpConfig = serde_saphyr::from_str(&format!("url: \"{url}\"")).unwrap();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        let mut policy = SinkPolicy::default();
        policy.retry.initial_backoff = Duration::from_millis(5);
        IdmefHttpSink::new(config, SinkContext { name: "idmef".into(), store: Store::open(dir).unwrap(), policy }).unwrap()
    }

    /// A receiver answering every POST with `status`; counts the POSTs and keeps the last
    /// `Authorization` header.
    async fn receiver(status: StatusCode) -> (std::net::SocketAddr, Arc<AtomicUsize>, Arc<std::sync::Mutex<Option<String>>>) {
        let (posts, auth) = (Arc::new(AtomicUsize::new(0)), Arc::new(std::sync::Mutex::new(None)));
        let (p, a) = (posts.clone(), auth.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            p.fetch_add(1, Ordering::SeqCst);
            *a.lock().unwrap() = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
            async move { status }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, posts, auth)
    }

    #[tokio::test]
    async fn credentials_in_the_url_go_as_basic_auth() {
        use base64::Engine;
        let (addr, posts, auth) = receiver(StatusCode::OK).await;
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&format!("http://concerto:p%40ss@{addr}/"), dir.path());
        sink.write(&[Arc::new(events(3))]).await.unwrap();
        assert_eq!(posts.load(Ordering::SeqCst), 3);
        let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("concerto:p@ss"));
        assert_eq!(auth.lock().unwrap().as_deref(), Some(expected.as_str()));
    }
}
