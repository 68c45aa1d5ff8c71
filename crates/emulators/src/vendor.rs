//! What the pull-API emulators (CrowdStrike, Tenable, Okta, Snyk, KnowBe4) share: one handler that
//! takes every request through the same steps (injected fault, then the vendor's answer), records
//! it with the status it got, and a fixed-window per-credential rate limiter. Each vendor supplies
//! its routes, its error envelopes and the headers it puts on every answer.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State as AxumState};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::net::{Conn, Server};

pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// One request as the emulator received it, and what it answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Decoded query parameters in their order (repeated names kept).
    pub query: Vec<(String, String)>,
    /// Every request header, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The client id, API key or token the request was sent with, valid or not, when it could be
    /// told: what rate limits are counted against.
    pub credential: Option<String>,
    /// `None` when the connection was reset instead of answered.
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A fault injected into the next request, whatever it is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    /// A server error with the vendor's envelope.
    Status(u16),
    /// The connection is reset; nothing is answered.
    Reset,
    /// A 429 as the vendor sends it; the number is the vendor's wait hint in seconds, if it sends one.
    Throttle(Option<u64>),
}

pub(crate) struct Request {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter, in order.
    pub fn params<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The user and password of an `Authorization: Basic` header.
    pub fn basic(&self) -> Option<(String, String)> {
        use base64::Engine;
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?).ok()?;
        decoded.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))
    }
}

/// An answer before it becomes a response.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, String)>,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::raw(status, "application/json", body.to_string())
    }

    /// A JSON body written by hand (the generated records are rendered straight to text).
    pub fn raw(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply { status, headers: Vec::new(), content_type, body }
    }

    pub fn header(mut self, name: &'static str, value: impl ToString) -> Reply {
        self.set(name, value);
        self
    }

    /// Adds a header (several of one name are kept, as `Link` needs).
    pub fn set(&mut self, name: &'static str, value: impl ToString) {
        self.headers.push((HeaderName::from_static(name), value.to_string()));
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(name, value);
            }
        }
        response
    }
}

/// A vendor's API behind the shared handler.
pub(crate) trait Api: Send + 'static {
    /// Who sent the request (valid or not), for the record and for rate limits.
    fn credential(&self, req: &Request) -> Option<String>;
    /// The endpoint's answer.
    fn answer(&mut self, req: &Request, credential: Option<&str>) -> Reply;
    /// The answer to an injected server error (`Fault::Status`) or throttle (`Fault::Throttle`).
    fn fault(&mut self, fault: Fault, credential: Option<&str>) -> Reply;
    /// Headers every answer carries, injected faults included.
    fn finish(&mut self, _credential: Option<&str>, _reply: &mut Reply) {}
}

pub(crate) struct Core<A> {
    pub api: A,
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
}

pub(crate) type Shared<A> = Arc<Mutex<Core<A>>>;

/// The running server and its state, as each vendor's `Emulator` holds them.
pub(crate) struct Handle<A> {
    shared: Shared<A>,
    server: Server,
}

impl<A: Api> Handle<A> {
    pub async fn start(listen: SocketAddr, api: A) -> std::io::Result<Handle<A>> {
        let shared = Arc::new(Mutex::new(Core { api, faults: VecDeque::new(), requests: Vec::new() }));
        let router = Router::new().fallback(handle::<A>).with_state(shared.clone());
        let server = Server::start(listen, router).await?;
        Ok(Handle { shared, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The state stays usable after a panic elsewhere (a test's assertion, say) poisoned the lock.
    pub fn core(&self) -> MutexGuard<'_, Core<A>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn api(&self) -> ApiGuard<'_, A> {
        ApiGuard(self.core())
    }

    pub fn inject(&self, n: usize, fault: Fault) {
        self.core().faults.extend(std::iter::repeat_n(fault, n));
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.core().requests.clone()
    }

    /// The most requests sent with `credential` within any 60 s, rejected ones included.
    pub fn max_requests_in_any_minute(&self, credential: &str) -> usize {
        let core = self.core();
        let times: Vec<Instant> = core.requests.iter().filter(|r| r.credential.as_deref() == Some(credential)).map(|r| r.at).collect();
        let mut first = 0;
        let mut best = 0;
        for last in 0..times.len() {
            while times[last].duration_since(times[first]) >= MINUTE {
                first += 1;
            }
            best = best.max(last - first + 1);
        }
        best
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// The vendor's state under the lock.
pub(crate) struct ApiGuard<'a, A>(MutexGuard<'a, Core<A>>);

impl<A> std::ops::Deref for ApiGuard<'_, A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.0.api
    }
}

impl<A> std::ops::DerefMut for ApiGuard<'_, A> {
    fn deref_mut(&mut self) -> &mut A {
        &mut self.0.api
    }
}

async fn handle<A: Api>(
    AxumState(shared): AxumState<Shared<A>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let req = Request { method, path: uri.path().to_string(), query, headers, body };
    let mut core = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let credential = core.api.credential(&req);
    let reply = match core.faults.pop_front() {
        Some(Fault::Reset) => None,
        Some(fault) => Some(core.api.fault(fault, credential.as_deref())),
        None => Some(core.api.answer(&req, credential.as_deref())),
    };
    let reply = reply.map(|mut reply| {
        core.api.finish(credential.as_deref(), &mut reply);
        reply
    });
    core.requests.push(RecordedRequest {
        at: Instant::now(),
        method: req.method.to_string(),
        path: req.path,
        query: req.query,
        headers: req.headers.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        credential,
        status: reply.as_ref().map(|r| r.status),
    });
    drop(core);
    match reply {
        Some(reply) => reply.into_response(),
        None => {
            conn.reset();
            Response::new(Body::empty())
        }
    }
}

/// Per-credential request counting in fixed one-minute windows: a window opens with a
/// credential's first request and lasts 60 s, as the vendors' per-minute limits are documented.
pub(crate) struct Limiter {
    pub limit: u32,
    /// Whether requests over the limit are refused; otherwise only counted for the headers.
    pub enforce: bool,
    /// Snyk: a refused request restarts the window, so refusals last until traffic stops for a minute.
    pub refusal_extends: bool,
    windows: HashMap<String, Window>,
}

struct Window {
    start: Instant,
    count: u32,
}

/// A limiter's verdict on one request: the numbers rate-limit headers report.
pub(crate) struct Admission {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the window ends.
    pub reset_in: Duration,
}

impl Admission {
    /// The end of the window as Unix seconds, rounded up.
    pub fn reset_epoch(&self) -> i64 {
        epoch_after(self.reset_in)
    }
}

impl Limiter {
    pub fn new(limit: u32, enforce: bool) -> Limiter {
        Limiter { limit, enforce, refusal_extends: false, windows: HashMap::new() }
    }

    /// Counts a request; refused requests do not take a slot.
    pub fn admit(&mut self, credential: &str) -> Admission {
        let now = Instant::now();
        let window = self.windows.entry(credential.to_string()).or_insert(Window { start: now, count: 0 });
        if now.duration_since(window.start) >= MINUTE {
            *window = Window { start: now, count: 0 };
        }
        let allowed = !self.enforce || window.count < self.limit;
        if allowed {
            window.count += 1;
        } else if self.refusal_extends {
            window.start = now;
        }
        let reset_in = MINUTE.saturating_sub(now.duration_since(window.start));
        Admission { allowed, limit: self.limit, remaining: self.limit.saturating_sub(window.count), reset_in }
    }

    /// The numbers for a credential without counting a request.
    pub fn peek(&self, credential: &str) -> Admission {
        let now = Instant::now();
        match self.windows.get(credential).filter(|w| now.duration_since(w.start) < MINUTE) {
            Some(w) => Admission {
                allowed: true,
                limit: self.limit,
                remaining: self.limit.saturating_sub(w.count),
                reset_in: MINUTE.saturating_sub(now.duration_since(w.start)),
            },
            None => Admission { allowed: true, limit: self.limit, remaining: self.limit, reset_in: MINUTE },
        }
    }
}

/// Now plus `d` as Unix seconds, rounded up.
pub(crate) fn epoch_after(d: Duration) -> i64 {
    let now = chrono::Utc::now();
    let then = now + chrono::TimeDelta::from_std(d).unwrap_or_default();
    then.timestamp() + i64::from(then.timestamp_subsec_nanos() > 0)
}

/// A well-mixed 64-bit value for `x` (splitmix64's finalizer): generated ids and values look random
/// but are a pure function of the record's index.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

const ODD: u64 = 0x9e37_79b9_7f4a_7c15;
/// The multiplicative inverse of `ODD` modulo 2^64 (Newton's iteration doubles the correct bits).
const INVERSE: u64 = {
    let mut inv = ODD;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(ODD.wrapping_mul(inv)));
        i += 1;
    }
    inv
};

/// Index `i` made to look random, reversibly, with a tenant's key: ids that encode their record's
/// index, so endpoints can look an id up without a table.
pub(crate) fn scramble(i: u64, key: u64) -> u64 {
    i.wrapping_mul(ODD) ^ key
}

pub(crate) fn unscramble(x: u64, key: u64) -> u64 {
    (x ^ key).wrapping_mul(INVERSE)
}

/// A stable 64-bit hash of a string (FNV-1a then mixed), to give each tenant its own ids.
pub(crate) fn hash(s: &str) -> u64 {
    mix(s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)))
}

/// A UUID-shaped (version 4) id from a tenant's hash and a record index, for records that must be
/// told apart but not decoded.
pub(crate) fn uuid_of(tenant: u64, i: u64) -> String {
    let low = mix(i.wrapping_add(tenant.rotate_left(17)));
    let high = mix(low ^ tenant);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        0x8000 | (low >> 48 & 0x3fff),
        low & 0xffff_ffff_ffff
    )
}
