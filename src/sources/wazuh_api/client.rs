//! HTTP access to one Wazuh manager's API for one source: a JWT from HTTP Basic credentials,
//! refreshed before its `exp` and once on a 401; every request (logins included) through the
//! source's rate limiter; 429s waited out for everyone of the source at once; 5xx answers,
//! timeouts and connection errors retried with exponential backoff and jitter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::WazuhApiConfig;
use crate::settings::Secret;
use crate::settings::tls::TlsConfig;

const LOGIN_PATH: &str = "/security/user/authenticate";
/// Attempts for one request on 5xx / network errors before the request fails.
const MAX_ATTEMPTS: u32 = 6;
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Refresh a token this long before it expires (a tenth of its life when that is shorter).
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// `auth_token_exp_timeout`'s default, for a token whose claims cannot be read.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// The manager counts requests in fixed 60 s windows shared by all its clients, and says
/// nothing of when the current one ends: after a 429 the source pauses this long (plus jitter)
/// and tries again, so it resumes a few seconds into the next window. Tries in an exhausted
/// window do not count against the next one.
const THROTTLE_PAUSE: Duration = Duration::from_secs(5);
/// How long one request may keep getting 429s before it fails.
const MAX_THROTTLED: Duration = Duration::from_secs(600);

/// The API refused a request for good: a 4xx other than 401 and 429.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {status}: {detail}")]
pub struct Refused {
    pub path: String,
    pub status: StatusCode,
    /// The Wazuh error code of the problem+json body (`error`, or `code`), if any.
    pub code: Option<i64>,
    pub detail: String,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    username: String,
    password: Secret,
    timeout: Duration,
    limiter: DefaultDirectRateLimiter,
    /// Read without waiting, so a request never leaves later than its turn.
    token: Mutex<Option<Token>>,
    /// Held by the one task logging in.
    login: tokio::sync::Mutex<()>,
    /// No request leaves before this instant (set by 429s).
    paused_until: Mutex<Instant>,
    cancel: CancellationToken,
    tenant: String,
    requests: AtomicU64,
    throttled: AtomicU64,
    usage: std::sync::Arc<crate::usage::UsageMeter>,
}

struct Token {
    value: String,
    refresh_at: Instant,
}

impl Token {
    fn fresh(&self) -> bool {
        Instant::now() < self.refresh_at
    }
}

#[derive(Deserialize)]
struct LoginResponse {
    data: LoginData,
}

#[derive(Deserialize)]
struct LoginData {
    token: String,
}

enum LoginError {
    /// 429: pause, then try again.
    Throttled,
    /// 5xx, timeout, connection: back off, then try again.
    Transient(String),
    Fatal(anyhow::Error),
}

impl Client {
    pub fn new(
        config: &WazuhApiConfig,
        tenant: &str,
        cancel: CancellationToken,
        usage: std::sync::Arc<crate::usage::UsageMeter>,
    ) -> anyhow::Result<Client> {
        Ok(Client {
            http: shared_client(&config.tls)?,
            base: config.url.trim_end_matches('/').to_string(),
            username: config.username.clone(),
            password: config.password.clone(),
            timeout: config.request_timeout,
            limiter: RateLimiter::direct(quota(config.rate_limit_per_minute.get())),
            token: Mutex::new(None),
            login: tokio::sync::Mutex::new(()),
            paused_until: Mutex::new(Instant::now()),
            cancel,
            tenant: tenant.to_string(),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            usage,
        })
    }

    /// Requests sent and 429s received so far.
    pub fn counters(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.throttled.load(Ordering::Relaxed))
    }

    /// `GET path?query` with a valid token; decodes the JSON body.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<T> {
        let mut failures = 0;
        let mut reauthenticated = false;
        let mut throttled_since = None;
        loop {
            self.pace().await?;
            let Some(token) = self.fresh_token() else {
                // This turn goes to the login. Tasks that find one under way wait for it and then
                // take a turn of their own, so every request leaves right after its turn.
                let guard = self.login.lock().await;
                if self.fresh_token().is_some() {
                    continue;
                }
                match self.login().await {
                    Ok(token) => *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token),
                    Err(LoginError::Throttled) => self.throttle("login", &mut throttled_since)?,
                    Err(LoginError::Transient(error)) => {
                        drop(guard);
                        failures += 1;
                        self.retry_or_fail(failures, &error).await?;
                    }
                    Err(LoginError::Fatal(e)) => return Err(e),
                }
                continue;
            };
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .get(format!("{}{path}", self.base))
                .query(query)
                .timeout(self.timeout)
                .bearer_auth(&token)
                .header("Accept", "application/json")
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    failures += 1;
                    self.retry_or_fail(failures, &format!("{path}: {e}")).await?;
                    continue;
                }
            };
            let status = response.status();
            metrics::counter!("sluice_wazuh_api_requests_total", "tenant" => self.tenant.clone(), "status" => status.as_u16().to_string())
                .increment(1);
            self.usage.api_call(&self.tenant);
            match status {
                s if s.is_success() => match response.bytes().await {
                    Ok(body) => {
                        return serde_json::from_slice(&body).with_context(|| format!("{path}: response is not the expected JSON"));
                    }
                    Err(e) => {
                        failures += 1;
                        self.retry_or_fail(failures, &format!("{path}: reading the response: {e}")).await?;
                    }
                },
                StatusCode::UNAUTHORIZED if !reauthenticated => {
                    // Expired early or revoked (a security change revokes every token): log in
                    // again, once.
                    tracing::debug!(tenant = %self.tenant, path, "401: logging in again");
                    reauthenticated = true;
                    let mut slot = self.token.lock().unwrap_or_else(PoisonError::into_inner);
                    if slot.as_ref().is_some_and(|t| t.value == token) {
                        *slot = None;
                    }
                }
                StatusCode::TOO_MANY_REQUESTS => self.throttle(path, &mut throttled_since)?,
                s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                    failures += 1;
                    let (_, detail) = problem(response).await;
                    self.retry_or_fail(failures, &format!("{path}: {s}: {detail}")).await?;
                }
                s => {
                    let (code, detail) = problem(response).await;
                    return Err(Refused { path: path.to_string(), status: s, code, detail }.into());
                }
            }
        }
    }

    fn fresh_token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(PoisonError::into_inner).as_ref().filter(|t| t.fresh()).map(|t| t.value.clone())
    }

    /// `POST /security/user/authenticate` with the credentials, on the turn the caller took.
    async fn login(&self) -> Result<Token, LoginError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .http
            .post(format!("{}{LOGIN_PATH}", self.base))
            .timeout(self.timeout)
            .basic_auth(&self.username, Some(self.password.expose()))
            .header("Accept", "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Err(LoginError::Transient(format!("login: {e}"))),
        };
        let status = response.status();
        metrics::counter!("sluice_wazuh_api_requests_total", "tenant" => self.tenant.clone(), "status" => status.as_u16().to_string())
            .increment(1);
        match status {
            s if s.is_success() => {
                let body: LoginResponse = match response.bytes().await {
                    Ok(b) => serde_json::from_slice(&b).context("login: response is not the expected JSON").map_err(LoginError::Fatal)?,
                    Err(e) => return Err(LoginError::Transient(format!("login: reading the response: {e}"))),
                };
                let lifetime = token_lifetime(&body.data.token, chrono::Utc::now().timestamp());
                let usable = lifetime.saturating_sub(TOKEN_MARGIN.min(lifetime / 10));
                tracing::debug!(tenant = %self.tenant, lifetime = ?lifetime, "logged in to the Wazuh API");
                Ok(Token { value: body.data.token, refresh_at: Instant::now() + usable })
            }
            StatusCode::TOO_MANY_REQUESTS => Err(LoginError::Throttled),
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                Err(LoginError::Transient(format!("login: {s}: {}", problem(response).await.1)))
            }
            // Never retried at once: the manager blocks a client after repeated failed logins.
            s => Err(LoginError::Fatal(anyhow!("login refused: {s}: {} (check username and password)", problem(response).await.1))),
        }
    }

    /// Counts a 429 and pauses every request of the source; fails once `since` is too long ago.
    fn throttle(&self, path: &str, since: &mut Option<Instant>) -> anyhow::Result<()> {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let first = *since.get_or_insert(now);
        if now.duration_since(first) > MAX_THROTTLED {
            bail!("{path}: still rate limited (429) after {MAX_THROTTLED:?}");
        }
        let wait = THROTTLE_PAUSE + crate::sources::jitter(THROTTLE_PAUSE / 2);
        let mut until = self.paused_until.lock().unwrap_or_else(PoisonError::into_inner);
        if *until <= now {
            tracing::warn!(tenant = %self.tenant, path, wait = ?wait, "429: the manager's request limit is reached; pausing");
        }
        *until = (*until).max(now + wait);
        Ok(())
    }

    async fn retry_or_fail(&self, attempt: u32, error: &str) -> anyhow::Result<()> {
        if attempt >= MAX_ATTEMPTS {
            bail!("{error} (gave up after {attempt} attempts)");
        }
        let wait = backoff(attempt);
        tracing::warn!(tenant = %self.tenant, error, retry_in = ?wait, attempt, "request failed; retrying");
        self.sleep(wait).await
    }

    /// Waits out a pause and for the rate limiter (or cancellation). A turn granted while a 429
    /// paused the source meanwhile is given up, so that one try, not every waiting task, tests
    /// whether the next window has begun.
    async fn pace(&self) -> anyhow::Result<()> {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if until > now {
                self.sleep(until - now).await?;
                continue;
            }
            tokio::select! {
                _ = self.limiter.until_ready() => {}
                _ = self.cancel.cancelled() => bail!("cancelled"),
            }
            if *self.paused_until.lock().unwrap_or_else(PoisonError::into_inner) <= Instant::now() {
                return Ok(());
            }
        }
    }

    async fn sleep(&self, d: Duration) -> anyhow::Result<()> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.cancel.cancelled() => Err(anyhow!("cancelled")),
        }
    }
}

/// Requests spaced evenly (burst of one), 1 % apart more than `per_minute` requires: a fixed
/// 60 s window, as the manager counts, can then never hold more than `per_minute` of them.
fn quota(per_minute: u32) -> Quota {
    let period = Duration::from_secs(60).mul_f64(1.01) / per_minute.max(1);
    Quota::with_period(period.max(Duration::from_nanos(1))).expect("the period is not zero")
}

/// The token's lifetime from its claims (`exp - nbf`, both the manager's clock), or
/// `exp - now` without `nbf`, or the default.
fn token_lifetime(token: &str, now: i64) -> Duration {
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)).and_then(Value::as_i64);
    let Some(exp) = claim("exp") else { return DEFAULT_TOKEN_LIFETIME };
    let start = claim("nbf").or_else(|| claim("iat")).unwrap_or(now);
    u64::try_from(exp - start).ok().filter(|s| *s > 0).map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
}

/// One HTTP client per TLS setting, shared by every source that has it: the common case (system
/// roots, verification on) costs one TLS stack and one connection pool for all of them.
fn shared_client(tls: &TlsConfig) -> anyhow::Result<reqwest::Client> {
    static CLIENTS: Mutex<Vec<(TlsConfig, reqwest::Client)>> = Mutex::new(Vec::new());
    let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, c)) = clients.iter().find(|(t, _)| t == tls) {
        return Ok(c.clone());
    }
    // Each request sets its own timeout; this one only bounds connecting.
    let client = crate::settings::tls::http_client(tls, Duration::from_secs(300))?;
    clients.push((tls.clone(), client.clone()));
    Ok(client)
}

/// Exponential backoff with jitter: half fixed, half random.
fn backoff(attempt: u32) -> Duration {
    let base = MIN_BACKOFF.saturating_mul(1 << attempt.min(8).saturating_sub(1)).min(MAX_BACKOFF);
    base / 2 + crate::sources::jitter(base / 2)
}

/// The Wazuh error code and the message of an error answer (problem+json `detail`, or the
/// start of the body).
async fn problem(response: reqwest::Response) -> (Option<i64>, String) {
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => {
            let code = v.get("error").or_else(|| v.get("code")).and_then(Value::as_i64);
            let detail = v.get("detail").or_else(|| v.get("title")).and_then(Value::as_str).map(str::to_string);
            (code, detail.unwrap_or_else(|| crate::sinks::http::excerpt(&text)))
        }
        Err(_) => (None, crate::sinks::http::excerpt(&text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(br#"{"alg":"ES512","typ":"JWT"}"#), URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn token_lifetime_comes_from_the_claims() {
        let now = 1_700_000_000;
        assert_eq!(token_lifetime(&jwt(r#"{"nbf":1000,"exp":1900}"#), now), Duration::from_secs(900));
        assert_eq!(token_lifetime(&jwt(r#"{"iat":1000,"exp":1002}"#), now), Duration::from_secs(2));
        assert_eq!(token_lifetime(&jwt(&format!(r#"{{"exp":{}}}"#, now + 300)), now), Duration::from_secs(300));
        assert_eq!(token_lifetime(&jwt(r#"{"nbf":1000,"exp":900}"#), now), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(token_lifetime("not-a-jwt", now), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(token_lifetime("a.!!!.c", now), DEFAULT_TOKEN_LIFETIME);
    }

    #[test]
    fn no_fixed_minute_holds_more_than_the_limit() {
        for per_minute in [1, 60, 250, 300, 6000] {
            let period = Duration::from_secs(60).mul_f64(1.01) / per_minute;
            // per_minute + 1 evenly spaced requests span more than a minute.
            assert!(period * per_minute > Duration::from_secs(60), "{per_minute}");
            let _ = quota(per_minute);
        }
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(backoff(1) <= MIN_BACKOFF);
        assert!(backoff(3) >= MIN_BACKOFF);
        assert!(backoff(40) <= MAX_BACKOFF);
    }
}
