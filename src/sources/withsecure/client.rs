//! HTTP access to the Elements API for one source: OAuth2 client credentials with a cached token,
//! the per-source rate limit on every request, and retries (429 `Retry-After`, backoff with
//! jitter on 5xx, timeouts and connection errors).

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::WithSecureConfig;

const TOKEN_PATH: &str = "/as/token.oauth2";
/// Attempts for one request on 5xx / network errors before the cycle gives up.
const MAX_ATTEMPTS: u32 = 6;
/// Consecutive 429 answers tolerated for one request.
const MAX_THROTTLED: u32 = 20;
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Refresh a token this long before the API says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

pub struct Api {
    http: reqwest::Client,
    timeout: Duration,
    base: String,
    client_id: String,
    client_secret: crate::settings::Secret,
    limiter: DefaultDirectRateLimiter,
    token: Option<(String, Instant)>,
    cancel: CancellationToken,
    tenant: String,
    usage: std::sync::Arc<crate::usage::UsageMeter>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// What kind of body a request carries.
pub enum Params<'a> {
    Form(&'a [(&'a str, String)]),
    Query(&'a [(&'a str, String)]),
}

impl Api {
    pub fn new(
        config: &WithSecureConfig,
        tenant: &str,
        cancel: CancellationToken,
        usage: std::sync::Arc<crate::usage::UsageMeter>,
    ) -> anyhow::Result<Api> {
        let http = shared_client()?;
        // Burst of one: requests are spread evenly, so no minute ever exceeds the limit.
        let quota = Quota::per_minute(config.rate_limit_per_minute).allow_burst(NonZeroU32::MIN);
        Ok(Api {
            http,
            base: config.api_url.trim_end_matches('/').to_string(),
            timeout: config.request_timeout,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            limiter: RateLimiter::direct(quota),
            token: None,
            cancel,
            tenant: tenant.to_string(),
            usage,
        })
    }

    /// Sends an authenticated request and decodes its JSON body.
    pub async fn call<T: serde::de::DeserializeOwned>(&mut self, method: Method, path: &str, params: Params<'_>) -> anyhow::Result<T> {
        let mut attempt = 0;
        let mut throttled = 0;
        let mut reauthenticated = false;
        loop {
            let token = self.token().await?;
            self.pace().await?;
            let url = format!("{}{path}", self.base);
            let request =
                self.http.request(method.clone(), &url).timeout(self.timeout).bearer_auth(&token).header("Accept", "application/json");
            let request = match params {
                Params::Form(form) => request.form(form),
                Params::Query(query) => request.query(query),
            };
            let outcome = request.send().await;
            let response = match outcome {
                Ok(r) => r,
                Err(e) => {
                    attempt += 1;
                    self.retry_or_fail(attempt, None, &format!("{path}: {e}")).await?;
                    continue;
                }
            };
            let status = response.status();
            metrics::counter!("sluice_withsecure_requests_total", "tenant" => self.tenant.clone(), "status" => status.as_u16().to_string())
                .increment(1);
            self.usage.api_call(&self.tenant);
            match status {
                s if s.is_success() => {
                    let body = response.bytes().await.with_context(|| format!("{path}: reading the response"))?;
                    return serde_json::from_slice(&body).with_context(|| format!("{path}: response is not the expected JSON"));
                }
                StatusCode::UNAUTHORIZED if !reauthenticated => {
                    // Expired or revoked early: one fresh token, then the request again.
                    tracing::debug!(tenant = %self.tenant, path, "401: refreshing the token");
                    self.token = None;
                    reauthenticated = true;
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    throttled += 1;
                    let wait = retry_after(&response).unwrap_or_else(|| backoff(throttled));
                    if throttled > MAX_THROTTLED {
                        bail!("{path}: still rate limited (429) after {MAX_THROTTLED} waits");
                    }
                    tracing::warn!(tenant = %self.tenant, path, wait = ?wait, "429 from the API; waiting as told");
                    self.sleep(wait).await?;
                }
                s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                    attempt += 1;
                    let wait = retry_after(&response);
                    let body = error_text(response).await;
                    self.retry_or_fail(attempt, wait, &format!("{path}: {s}: {body}")).await?;
                }
                s => bail!("{path}: {s}: {}", error_text(response).await),
            }
        }
    }

    async fn retry_or_fail(&self, attempt: u32, wait: Option<Duration>, error: &str) -> anyhow::Result<()> {
        if attempt >= MAX_ATTEMPTS {
            bail!("{error} (gave up after {attempt} attempts)");
        }
        let wait = wait.unwrap_or_else(|| backoff(attempt));
        tracing::warn!(tenant = %self.tenant, error, retry_in = ?wait, attempt, "request failed; retrying");
        self.sleep(wait).await
    }

    /// A valid access token, fetched or refreshed when needed.
    async fn token(&mut self) -> anyhow::Result<String> {
        if let Some((token, expires)) = &self.token
            && Instant::now() < *expires
        {
            return Ok(token.clone());
        }
        let mut attempt = 0;
        let response = loop {
            self.pace().await?;
            let sent = self
                .http
                .post(format!("{}{TOKEN_PATH}", self.base))
                .timeout(self.timeout)
                .basic_auth(&self.client_id, Some(self.client_secret.expose()))
                .header("Accept", "application/json")
                .form(&[("grant_type", "client_credentials"), ("scope", "connect.api.read")])
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => break r,
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS || r.status().is_server_error() => {
                    attempt += 1;
                    let wait = retry_after(&r);
                    let status = r.status();
                    self.retry_or_fail(attempt, wait, &format!("token request: {status}: {}", error_text(r).await)).await?;
                }
                Ok(r) => {
                    let status = r.status();
                    bail!("token request refused: {status}: {} (check client_id and client_secret)", error_text(r).await)
                }
                Err(e) => {
                    attempt += 1;
                    self.retry_or_fail(attempt, None, &format!("token request: {e}")).await?;
                }
            }
        };
        let body: TokenResponse = response.json().await.context("token response is not the expected JSON")?;
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(1799));
        let usable = lifetime.saturating_sub(TOKEN_MARGIN.min(lifetime / 10));
        tracing::debug!(tenant = %self.tenant, lifetime = ?lifetime, "new access token");
        self.token = Some((body.access_token.clone(), Instant::now() + usable));
        Ok(body.access_token)
    }

    /// Waits for the rate limiter (or cancellation).
    async fn pace(&self) -> anyhow::Result<()> {
        tokio::select! {
            _ = self.limiter.until_ready() => Ok(()),
            _ = self.cancel.cancelled() => Err(anyhow!("cancelled")),
        }
    }

    async fn sleep(&self, d: Duration) -> anyhow::Result<()> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.cancel.cancelled() => Err(anyhow!("cancelled")),
        }
    }
}

/// One HTTP client for every tenant: its TLS configuration and connection pool are shared, so a
/// thousand tenants cost a thousand small structs, not a thousand TLS stacks.
fn shared_client() -> anyhow::Result<reqwest::Client> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

/// Exponential backoff with jitter: half fixed, half random.
fn backoff(attempt: u32) -> Duration {
    let base = MIN_BACKOFF.saturating_mul(1 << attempt.min(8).saturating_sub(1)).min(MAX_BACKOFF);
    base / 2 + rand::rng().random_range(Duration::ZERO..=base / 2)
}

/// The API's error message (`{"message": …}` or OAuth's `error_description`), else the body.
async fn error_text(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => v
            .get("message")
            .or_else(|| v.get("error_description"))
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or(text),
        Err(_) => text.chars().take(300).collect(),
    }
}
