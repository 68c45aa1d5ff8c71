//! `type: idmefv2_http`: one IDMEFv2 message per HTTP POST (as Concerto SIEM and the IDMEFv2
//! HTTPS transport draft expect), `Content-Type: application/json`, optional HTTP Basic auth
//! (`username`/`password`, or credentials in the URL).
//!
//! 2xx: delivered. 408, 429, 5xx, timeouts and resets: retried with exponential backoff and
//! jitter (429 honours `Retry-After`). Any other 4xx will never succeed: the event goes to the
//! dead-letter list with the answer, and counts as handled.
//!
//! A destination that is down must not hold the batch for the time every message's retries
//! take: the first message that cannot be delivered (no connection could be made, or its
//! attempts ran out) fails the whole write at once, the messages in flight are dropped, and the
//! sink worker keeps the batch in the outbox, retrying it with backoff.

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

    async fn send(&self, event: &Event) -> anyhow::Result<Outcome> {
        let model = normalize_lossless(event);
        let message = if self.config.version == idmefv2::VERSION_V04 { idmefv2::message_v04(&model) } else { idmefv2::message(&model) };
        self.post(serde_json::to_vec(&message)?).await
    }

    async fn post(&self, body: Vec<u8>) -> anyhow::Result<Outcome> {
        let url = &self.endpoint.url;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.authorize(self.http.post(url).header("Content-Type", "application/json").body(body.clone()));
            let (wait, error) = match request.send().await {
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
                    (wait, format!("{status}: {text}"))
                }
                // Down or unreachable: no use trying this message again, or the others.
                Err(e) if http::is_unreachable(&e) => bail!("POST {url}: {}", http::error_text(&e)),
                Err(e) => (None, http::error_text(&e)),
            };
            if attempt >= self.config.max_attempts {
                bail!("POST {url}: {error} (after {attempt} attempts)");
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
            // Encoded as they go out: a write that fails at its first message costs little.
            let all = &events;
            let mut results = futures::stream::iter(0..events.len())
                .map(|i| async move { (i, this.send(all[i]).await) })
                .buffer_unordered(this.config.concurrency.get());
            let mut written = Written::default();
            while let Some((i, result)) = results.next().await {
                // The first message that cannot be delivered fails the write; dropping the
                // stream drops the requests in flight. Messages delivered before are repeated
                // when the batch is retried; their IDMEFv2 ids are stable, so a receiver can
                // recognise them.
                match result? {
                    Outcome::Delivered => {}
                    Outcome::Refused(reason) => this.ctx.dead_letter(events[i], &reason, &mut written).await?,
                }
            }
            Ok(written)
        })
    }

    /// A `GET` of the URL, which writes nothing: any answer but 401/403 shows the receiver is
    /// up (a POST-only receiver answers 405).
    fn check(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let url = &self.endpoint.url;
            let response =
                self.authorize(self.http.get(url)).send().await.map_err(|e| anyhow::anyhow!("GET {url}: {}", http::error_text(&e)))?;
            match response.status() {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => bail!("GET {url}: credentials refused: HTTP {}", response.status()),
                _ => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

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

    #[tokio::test]
    async fn a_refused_connection_fails_the_whole_write_at_once_without_leaking_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&format!("http://concerto:hunter2@127.0.0.1:{port}/"), dir.path());
        let began = Instant::now();
        let err = sink.write(&[Arc::new(events(2000))]).await.unwrap_err();
        assert!(began.elapsed() < Duration::from_secs(2), "{:?}", began.elapsed());
        let text = format!("{err:#}");
        assert!(text.contains("refused") && !text.contains("hunter2"), "{text}");
        assert!(sink.check().await.is_err());
    }

    #[tokio::test]
    async fn a_message_out_of_attempts_ends_the_write_instead_of_trying_every_other_one() {
        let (addr, posts, _) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&format!("http://{addr}/"), dir.path());
        let err = sink.write(&[Arc::new(events(2000))]).await.unwrap_err();
        assert!(format!("{err:#}").contains("503"), "{err:#}");
        // `concurrency` messages at most were being tried, each `max_attempts` times at most.
        let sent = posts.load(Ordering::SeqCst);
        assert!(sent <= 8 * 5, "{sent} POSTs for one failed write");
        assert!(sink.check().await.is_ok(), "a 503 receiver is up");
    }
}
