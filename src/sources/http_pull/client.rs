//! HTTP for one `http_pull` source: authentication (with a cached OAuth 2 token renewed before it
//! expires and after a 401), the client-side rate limit, the server's announced limit (wait for
//! the reset when none is left) and retries: 429 answers wait what the server asks, 5xx answers,
//! timeouts and resets back off with jitter.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow, bail};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{Auth, CredentialsIn, HttpPullConfig, RateLimitHeaders, ResetKind, Retry};
use crate::settings::redact_urls;

/// Renew a token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// The longest a server may make us wait for one request.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// One request, fully rendered.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// A response: status, headers and the JSON body (`null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub struct Client {
    http: reqwest::Client,
    /// `base_url` as configured: the URL of an empty request path.
    configured: Url,
    /// `base_url` ending in `/`, for joining paths below it.
    base: Url,
    auth: Auth,
    headers: HeaderMap,
    retry: Retry,
    limiter: Option<DefaultDirectRateLimiter>,
    rate_limit_headers: Option<RateLimitHeaders>,
    /// The server said no requests are left until then.
    paused_until: Option<Instant>,
    token: Option<(String, Instant)>,
    cancel: CancellationToken,
    tenant: Arc<str>,
    usage: Option<Arc<crate::usage::UsageMeter>>,
    /// Every request is logged at info level (`sluice pull --dry-run`).
    pub trace: bool,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Value>,
}

impl Client {
    pub fn new(
        config: &HttpPullConfig,
        tenant: Arc<str>,
        cancel: CancellationToken,
        usage: Option<Arc<crate::usage::UsageMeter>>,
    ) -> anyhow::Result<Client> {
        let http = crate::settings::tls::http_client(&config.tls, config.request_timeout)?;
        let configured = Url::parse(&config.base_url).context("base_url")?;
        let mut base = configured.clone();
        // A prefix path is kept when paths are joined to it.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in &config.headers {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).with_context(|| format!("header name `{name}`"))?,
                HeaderValue::from_str(value).with_context(|| format!("value of header `{name}`"))?,
            );
        }
        // Burst of one: requests are spread evenly, so no minute exceeds the limit.
        let limiter = config.rate_limit_per_minute.map(|n| RateLimiter::direct(Quota::per_minute(n).allow_burst(NonZeroU32::MIN)));
        Ok(Client {
            http,
            configured,
            base,
            auth: config.auth.clone(),
            headers,
            retry: config.retry.clone(),
            limiter,
            rate_limit_headers: config.rate_limit_headers.clone(),
            paused_until: None,
            token: None,
            cancel,
            tenant,
            usage,
            trace: false,
        })
    }

    /// A path (with query) joined to `base_url`, or an absolute URL taken as it is (a next link).
    pub fn url(&self, path_or_url: &str) -> anyhow::Result<Url> {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            return Url::parse(path_or_url).with_context(|| format!("`{}` is not a URL", redact_urls(path_or_url)));
        }
        if path_or_url.is_empty() || path_or_url.starts_with('?') {
            let mut url = self.configured.clone();
            url.set_query(path_or_url.strip_prefix('?'));
            return Ok(url);
        }
        // `/rest/orgs` below `https://api.snyk.io`; also `orgs` below `https://host/prefix/`.
        let relative = path_or_url.trim_start_matches('/');
        let url = if path_or_url.starts_with('/') && !self.base.path().trim_matches('/').is_empty() {
            // An absolute path that already repeats the prefix (a next link) stays as it is.
            let prefix = self.base.path().trim_end_matches('/');
            if path_or_url.starts_with(&format!("{prefix}/")) { self.base.join(path_or_url) } else { self.base.join(relative) }
        } else {
            self.base.join(relative)
        };
        url.with_context(|| format!("`{path_or_url}` does not make a URL with base_url"))
    }

    /// Sends `request`; statuses in `accept` are returned like a success (a 409 that names the
    /// export job already running). Anything else that is not a success fails after retries.
    pub async fn send(&mut self, request: &Outgoing, accept: &[u16]) -> anyhow::Result<Answer> {
        let shown = redact_urls(request.url.as_str());
        let mut attempt = 0;
        let mut throttled = 0;
        let mut reauthenticated = false;
        loop {
            self.pace().await?;
            if self.trace {
                tracing::info!(method = %request.method, url = %shown, body = ?request.body.as_ref().map(|b| b.to_string()), "request");
            }
            let built = self.build(request).await?;
            let response = match built.send().await {
                Ok(r) => r,
                Err(e) => {
                    attempt += 1;
                    self.retry_or_fail(attempt, None, &format!("{shown}: {}", redact_urls(&error_chain(&e)))).await?;
                    continue;
                }
            };
            let status = response.status();
            metrics::counter!("sluice_http_pull_requests_total", "tenant" => self.tenant.to_string(), "status" => status.as_u16().to_string())
                .increment(1);
            if let Some(usage) = &self.usage {
                usage.api_call(&self.tenant);
            }
            self.note_rate_limit(response.headers());
            if status.is_success() || accept.contains(&status.as_u16()) {
                let headers = response.headers().clone();
                let bytes = response.bytes().await.with_context(|| format!("{shown}: reading the response"))?;
                let body = if bytes.iter().all(u8::is_ascii_whitespace) {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).with_context(|| format!("{shown}: the response is not JSON"))?
                };
                return Ok(Answer { status, headers, body });
            }
            match status {
                StatusCode::UNAUTHORIZED if !reauthenticated && matches!(self.auth, Auth::Oauth2 { .. }) => {
                    tracing::debug!(tenant = %self.tenant, url = %shown, "401: renewing the token");
                    self.token = None;
                    reauthenticated = true;
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    throttled += 1;
                    if throttled > self.retry.max_throttled {
                        bail!("{shown}: still rate limited (429) after {} waits", self.retry.max_throttled);
                    }
                    let wait = self.throttle_wait(response.headers()).unwrap_or_else(|| self.backoff(throttled));
                    tracing::warn!(tenant = %self.tenant, url = %shown, wait = ?wait, "429 from the API; waiting as told");
                    self.sleep(wait).await?;
                }
                s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                    attempt += 1;
                    let wait = retry_after(response.headers());
                    let text = error_text(response).await;
                    self.retry_or_fail(attempt, wait, &format!("{shown}: {s}: {text}")).await?;
                }
                s => bail!("{shown}: {s}: {}", error_text(response).await),
            }
        }
    }

    async fn build(&mut self, request: &Outgoing) -> anyhow::Result<reqwest::RequestBuilder> {
        let body = match &request.body {
            Some(v) => serde_json::to_vec(v)?,
            None => Vec::new(),
        };
        let mut headers = self.headers.clone();
        if request.body.is_some() {
            headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in &request.headers {
            headers.insert(HeaderName::from_bytes(name.as_bytes())?, HeaderValue::from_str(value)?);
        }
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let encoded =
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{username}:{}", password.expose()));
                headers.insert(reqwest::header::AUTHORIZATION, sensitive(&format!("Basic {encoded}"))?);
            }
            Auth::Bearer { token } => {
                headers.insert(reqwest::header::AUTHORIZATION, sensitive(&format!("Bearer {}", token.expose()))?);
            }
            Auth::Header { name, value } => {
                headers.insert(HeaderName::from_bytes(name.as_bytes())?, sensitive(value.expose())?);
            }
            Auth::Oauth2 { .. } => {
                let token = self.token().await?;
                headers.insert(reqwest::header::AUTHORIZATION, sensitive(&format!("Bearer {token}"))?);
            }
            Auth::Sigv4 { access_key_id, secret_access_key, session_token, region, service } => {
                let signed = super::sigv4::sign(
                    &super::sigv4::Credentials {
                        access_key_id,
                        secret_access_key: secret_access_key.expose(),
                        session_token: session_token.as_ref().map(|t| t.expose()),
                        region,
                        service,
                    },
                    &request.method,
                    &request.url,
                    &headers,
                    &body,
                    SystemTime::now(),
                )?;
                for (name, value) in signed {
                    headers.insert(HeaderName::from_bytes(name.as_bytes())?, sensitive(&value)?);
                }
            }
        }
        let mut builder = self.http.request(request.method.clone(), request.url.clone()).headers(headers);
        if request.body.is_some() {
            builder = builder.body(body);
        }
        Ok(builder)
    }

    /// A valid OAuth 2 access token, fetched or renewed when needed.
    async fn token(&mut self) -> anyhow::Result<String> {
        if let Some((token, expires)) = &self.token
            && Instant::now() < *expires
        {
            return Ok(token.clone());
        }
        let Auth::Oauth2 { token_url, client_id, client_secret, scopes, params, credentials } = self.auth.clone() else {
            unreachable!("only OAuth 2 has tokens")
        };
        let mut form: Vec<(String, String)> = vec![("grant_type".into(), "client_credentials".into())];
        if credentials == CredentialsIn::Body {
            form.push(("client_id".into(), client_id.clone()));
            form.push(("client_secret".into(), client_secret.expose().to_string()));
        }
        if !scopes.is_empty() {
            form.push(("scope".into(), scopes.join(" ")));
        }
        form.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut attempt = 0;
        let response = loop {
            self.pace().await?;
            let mut request = self.http.post(&token_url).header("Accept", "application/json").form(&form);
            if credentials == CredentialsIn::Basic {
                request = request.basic_auth(&client_id, Some(client_secret.expose()));
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => break r,
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS || r.status().is_server_error() => {
                    attempt += 1;
                    let wait = self.throttle_wait(r.headers());
                    let status = r.status();
                    self.retry_or_fail(attempt, wait, &format!("token request: {status}: {}", error_text(r).await)).await?;
                }
                Ok(r) => {
                    let status = r.status();
                    bail!("token request refused: {status}: {} (check client_id and client_secret)", error_text(r).await)
                }
                Err(e) => {
                    attempt += 1;
                    self.retry_or_fail(attempt, None, &format!("token request: {}", redact_urls(&error_chain(&e)))).await?;
                }
            }
        };
        let body: TokenResponse = response.json().await.context("the token response is not the expected JSON")?;
        // Some servers send `expires_in` as a string.
        let lifetime = body
            .expires_in
            .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
            .map_or(Duration::from_secs(3600), Duration::from_secs);
        let usable = lifetime.saturating_sub(TOKEN_MARGIN.min(lifetime / 10));
        self.token = Some((body.access_token.clone(), Instant::now() + usable));
        Ok(body.access_token)
    }

    /// Remembers when the server says its allowance is used up.
    fn note_rate_limit(&mut self, headers: &HeaderMap) {
        let Some(names) = &self.rate_limit_headers else { return };
        let remaining = header_number(headers, &names.remaining);
        if remaining.is_some_and(|r| r <= 0.0)
            && let Some(reset) = header_number(headers, &names.reset)
        {
            let wait = match names.reset_kind {
                ResetKind::Seconds => Duration::from_secs_f64(reset.max(0.0)),
                ResetKind::Epoch => until_epoch(reset),
            };
            tracing::info!(tenant = %self.tenant, wait = ?wait, "the API's rate limit is used up; waiting for its reset");
            self.paused_until = Some(Instant::now() + wait.min(MAX_WAIT));
        }
    }

    /// How long a 429 asks to wait: `Retry-After`, an epoch header, or the limit's reset.
    fn throttle_wait(&self, headers: &HeaderMap) -> Option<Duration> {
        let wait = retry_after(headers)
            .or_else(|| {
                let name = self.retry.retry_after_epoch_header.as_ref()?;
                header_number(headers, name).map(until_epoch)
            })
            .or_else(|| {
                let names = self.rate_limit_headers.as_ref()?;
                let reset = header_number(headers, &names.reset)?;
                Some(match names.reset_kind {
                    ResetKind::Seconds => Duration::from_secs_f64(reset.max(0.0)),
                    ResetKind::Epoch => until_epoch(reset),
                })
            })?;
        // A reset already past still deserves a moment, or we would hammer the server.
        Some(wait.clamp(Duration::from_millis(200), MAX_WAIT))
    }

    async fn retry_or_fail(&self, attempt: u32, wait: Option<Duration>, error: &str) -> anyhow::Result<()> {
        if attempt >= self.retry.max_attempts {
            bail!("{error} (gave up after {attempt} attempts)");
        }
        let wait = wait.unwrap_or_else(|| self.backoff(attempt)).min(MAX_WAIT);
        tracing::warn!(tenant = %self.tenant, error, retry_in = ?wait, attempt, "request failed; retrying");
        self.sleep(wait).await
    }

    /// Exponential backoff with jitter: half fixed, half random.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.retry.initial_backoff.saturating_mul(1 << attempt.min(10).saturating_sub(1)).min(self.retry.max_backoff);
        base / 2 + rand::rng().random_range(Duration::ZERO..=base / 2)
    }

    /// Waits for the server's reset and the client-side limiter (or cancellation).
    async fn pace(&mut self) -> anyhow::Result<()> {
        if let Some(until) = self.paused_until.take() {
            self.sleep(until.saturating_duration_since(Instant::now())).await?;
        }
        if let Some(limiter) = &self.limiter {
            tokio::select! {
                _ = limiter.until_ready() => {}
                _ = self.cancel.cancelled() => return Err(anyhow!("cancelled")),
            }
        }
        Ok(())
    }

    pub async fn sleep(&self, d: Duration) -> anyhow::Result<()> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.cancel.cancelled() => Err(anyhow!("cancelled")),
        }
    }
}

fn sensitive(value: &str) -> anyhow::Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).context("a credential holds characters a header cannot")?;
    v.set_sensitive(true);
    Ok(v)
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn until_epoch(epoch_secs: f64) -> Duration {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    Duration::from_secs_f64((epoch_secs - now).max(0.0))
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(secs.max(0.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The API's error message where it has a known shape, else the start of the body.
async fn error_text(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let found = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
        let candidates = ["/message", "/errorSummary", "/error_description", "/errors/0/message", "/errors/0/detail", "/error"];
        candidates.iter().find_map(|p| v.pointer(p).and_then(Value::as_str).map(str::to_string))
    });
    redact_urls(&found.unwrap_or_else(|| text.chars().take(300).collect()))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::HeaderMap as Headers;

    use super::*;

    /// A server that answers `[]` and keeps every request's headers.
    async fn recorder() -> (String, Arc<Mutex<Vec<Headers>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let app = axum::Router::new().fallback(move |headers: Headers| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(headers);
                "[]"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    async fn send_with(auth: Value) -> Headers {
        let (url, seen) = recorder().await;
        let config: HttpPullConfig = serde_json::from_value(serde_json::json!({
            "base_url": url, "auth": auth, "datasets": [{"tag": "t", "request": {"path": "/x"}}]
        }))
        .unwrap();
        let mut client = Client::new(&config, "acme".into(), CancellationToken::new(), None).unwrap();
        let request =
            Outgoing { method: Method::POST, url: client.url("/x?a=1").unwrap(), headers: Vec::new(), body: Some(serde_json::json!({})) };
        client.send(&request, &[]).await.unwrap();
        seen.lock().unwrap().pop().unwrap()
    }

    #[tokio::test]
    async fn each_auth_kind_sends_its_header() {
        let basic = send_with(serde_json::json!({"type": "basic", "username": "u", "password": "p"})).await;
        assert_eq!(basic["authorization"], "Basic dTpw");
        let bearer = send_with(serde_json::json!({"type": "bearer", "token": "t0k"})).await;
        assert_eq!(bearer["authorization"], "Bearer t0k");
        let header = send_with(serde_json::json!({"type": "header", "name": "X-ApiKeys", "value": "accessKey=a;secretKey=s"})).await;
        assert_eq!(header["x-apikeys"], "accessKey=a;secretKey=s");
        let sigv4 = send_with(serde_json::json!({
            "type": "sigv4", "access_key_id": "AKID", "secret_access_key": "s3cr3t", "session_token": "tok", "region": "eu-west-1", "service": "securityhub"
        }))
        .await;
        let auth = sigv4["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/") && auth.contains("/eu-west-1/securityhub/aws4_request"), "{auth}");
        assert!(auth.contains("SignedHeaders=") && auth.contains("x-amz-date"), "{auth}");
        assert_eq!(sigv4["x-amz-security-token"], "tok");
    }

    #[test]
    fn paths_join_below_the_base_and_next_links_keep_their_prefix() {
        let config = |base: &str| -> HttpPullConfig {
            serde_json::from_value(serde_json::json!({"base_url": base, "datasets": [{"tag": "t", "request": {"path": "/x"}}]})).unwrap()
        };
        let c = Client::new(&config("https://api.snyk.io"), "t".into(), CancellationToken::new(), None).unwrap();
        assert_eq!(c.url("/rest/orgs?version=1").unwrap().as_str(), "https://api.snyk.io/rest/orgs?version=1");
        let c = Client::new(&config("https://h/prefix"), "t".into(), CancellationToken::new(), None).unwrap();
        assert_eq!(c.url("/a").unwrap().as_str(), "https://h/prefix/a");
        assert_eq!(c.url("/prefix/a?b=1").unwrap().as_str(), "https://h/prefix/a?b=1");
        assert_eq!(c.url("").unwrap().as_str(), "https://h/prefix");
        assert_eq!(c.url("https://other/x").unwrap().as_str(), "https://other/x");
    }
}
