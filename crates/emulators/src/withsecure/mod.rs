//! A WithSecure Elements API emulator, written from the vendor's published clients and samples
//! (the Elements API reference at connect.withsecure.com and WithSecure's published API client samples): OAuth 2 client credentials over HTTP Basic with
//! expiring tokens; `security-events` as form POST or GET with engine groups, `exclusiveStart`,
//! both orders and keyset anchors (`nextAnchor` absent on the last page); organizations for
//! partner credentials; `whoami`; the mandatory `User-Agent`; `X-Transaction` on every answer;
//! an optional server-side rate limit (429 + `Retry-After`). Tests inject 429s, 5xx answers,
//! slowness and token revocation, and read back every request the emulator received.

mod http;
mod query;
mod samples;
mod state;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

pub use state::RecordedRequest;
use state::{Client, Fault, Org, State, Stored};

#[derive(Debug, Clone)]
pub struct Options {
    /// Lifetime of issued tokens, also their `expires_in`; the API's is 1799 s.
    pub token_ttl: Duration,
    /// Server-side limit of requests per client per sliding minute (token requests included);
    /// `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options { token_ttl: Duration::from_secs(1799), rate_limit_per_minute: None }
    }
}

/// A running emulator. Cloning gives another handle to the same one; it serves until the tokio
/// runtime it was started on shuts down.
#[derive(Clone)]
pub struct Emulator {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
}

impl Emulator {
    /// Binds `listen` (port 0 picks a free one) and serves in a spawned task.
    pub async fn start(listen: SocketAddr, options: Options) -> std::io::Result<Emulator> {
        let state = Arc::new(Mutex::new(State::new(options)));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let app = http::router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Emulator { state, addr })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        http::lock(&self.state)
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `kind` is `company` or `partner`, as the API's organization `type`.
    pub fn add_organization(&self, id: &str, name: &str, kind: &str) {
        self.state().orgs.insert(id.to_string(), Org { name: name.to_string(), kind: kind.to_string() });
    }

    /// API credentials of `own_org` (the default `organizationId`) that may also read
    /// `visible_orgs`, as partner credentials do. Adding a client id again replaces it.
    pub fn add_client(&self, client_id: &str, client_secret: &str, own_org: &str, visible_orgs: &[&str]) {
        let mut visible: BTreeSet<String> = visible_orgs.iter().map(|s| s.to_string()).collect();
        visible.insert(own_org.to_string());
        let client = Client { secret: client_secret.to_string(), own_org: own_org.to_string(), visible };
        self.state().clients.insert(client_id.to_string(), client);
    }

    /// Stores events as given. Panics unless each has an `id` and an RFC 3339
    /// `persistenceTimestamp`, which order the pages.
    pub fn push_events(&self, org_id: &str, events: Vec<Value>) {
        let batch: Vec<Stored> = events.into_iter().map(Stored::new).collect();
        self.state().events.entry(org_id.to_string()).or_default().insert(batch);
    }

    /// Stores `count` events cloned from the real samples (cycling through them, engines kept),
    /// with unique ids `<uuid>_<n>`, `organization` set to `org_id`, and a `persistenceTimestamp`
    /// that starts at `start` and advances 1 ms every `per_timestamp` events, so that many events
    /// share an instant, also across page boundaries. Returns the ids in timestamp order.
    pub fn generate(&self, org_id: &str, count: usize, start: DateTime<Utc>, per_timestamp: usize) -> Vec<String> {
        let templates = samples::templates();
        let per = per_timestamp.max(1);
        let batch_id = uuid::Uuid::new_v4();
        let mut st = self.state();
        let org_name = st.orgs.get(org_id).map_or_else(|| org_id.to_string(), |o| o.name.clone());
        let first = st.generated;
        let mut ids = Vec::with_capacity(count);
        let mut batch = Vec::with_capacity(count);
        for i in 0..count {
            let id = format!("{batch_id}_{i}");
            let at = start + TimeDelta::milliseconds((i / per) as i64);
            let template = &templates[(first + i) % templates.len()];
            batch.push(Stored::new(template.instantiate(&id, at, org_id, &org_name)));
            ids.push(id);
        }
        st.generated += count;
        st.events.entry(org_id.to_string()).or_default().insert(batch);
        ids
    }

    /// The next `n` requests, to any endpoint, answer `status` (500, 502, 503 …) with the flat
    /// error envelope.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state().faults.extend((0..n).map(|_| Fault::Status(status)));
    }

    /// The next `n` requests, to any endpoint, answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: usize, retry_after_secs: u64) {
        self.state().faults.extend((0..n).map(|_| Fault::Throttle(retry_after_secs)));
    }

    /// Every token issued so far stops working (401), as if it had expired early.
    pub fn expire_tokens(&self) {
        self.state().token_generation += 1;
    }

    /// Every response is delayed by `d` (zero for none).
    pub fn set_delay(&self, d: Duration) {
        self.state().delay = d;
    }

    /// Every request received so far, rejected ones included, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// The most requests `client_id` sent within any 60 s (token requests and rejected requests
    /// included): what a client-side rate limit must keep under its setting.
    pub fn max_requests_in_any_minute(&self, client_id: &str) -> usize {
        self.state().max_requests_in_any_minute(client_id)
    }

    pub fn event_count(&self, org_id: &str) -> usize {
        self.state().events.get(org_id).map_or(0, |log| log.events.len())
    }
}
