//! A WithSecure Elements API emulator: OAuth2 client credentials with expiring tokens,
//! `security-events` with keyset paging (`nextAnchor` absent on the last page), `exclusiveStart`,
//! engine groups, organizations for partner accounts, server-side rate limits (429 +
//! `Retry-After`), and injectable 429s, 5xx answers, slowness and token revocation.

mod http;
mod query;
mod samples;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

pub use state::RecordedRequest;
use state::{Client, Fault, Org, State};

#[derive(Debug, Clone)]
pub struct Options {
    /// Lifetime of issued tokens (`expires_in`); the API's is 1799 s.
    pub token_ttl: Duration,
    /// Server-side limit per client per sliding minute; `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options { token_ttl: Duration::from_secs(1799), rate_limit_per_minute: None }
    }
}

/// A running emulator. Cloning gives another handle to the same one.
#[derive(Clone)]
pub struct Emulator {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
}

impl Emulator {
    /// Binds `listen` (use port 0 for any) and serves in a background task.
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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("emulator state poisoned")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_organization(&self, id: &str, name: &str, kind: &str) {
        self.state().orgs.insert(id.to_string(), Org { name: name.to_string(), kind: kind.to_string() });
    }

    /// An API client whose credentials see `visible_orgs` (its own organization included).
    pub fn add_client(&self, client_id: &str, client_secret: &str, own_org: &str, visible_orgs: &[&str]) {
        let mut visible: std::collections::HashSet<String> = visible_orgs.iter().map(|s| s.to_string()).collect();
        visible.insert(own_org.to_string());
        self.state().clients.insert(
            client_id.to_string(),
            Client { secret: client_secret.to_string(), own_org: own_org.to_string(), visible },
        );
    }

    /// Adds events as given; each needs `id` and `persistenceTimestamp`.
    pub fn push_events(&self, org_id: &str, events: Vec<Value>) {
        self.state().insert_events(org_id, events);
    }

    /// Adds `count` events cloned from the real samples, with unique ids, whose
    /// `persistenceTimestamp` starts at `start` and advances 1 ms every `per_timestamp` events.
    /// Returns their ids in order.
    pub fn generate(&self, org_id: &str, count: usize, start: DateTime<Utc>, per_timestamp: usize) -> Vec<String> {
        let mut st = self.state();
        let org_name = st.orgs.get(org_id).map(|o| o.name.clone()).unwrap_or_else(|| org_id.to_string());
        let batch = uuid::Uuid::new_v4();
        let per = per_timestamp.max(1);
        let mut ids = Vec::with_capacity(count);
        let mut events = Vec::with_capacity(count);
        let base = st.generated;
        for i in 0..count {
            let n = base as usize + i;
            let mut event: Value = serde_json::from_str(samples::SAMPLES[n % samples::SAMPLES.len()]).expect("samples are JSON");
            let ts = start + chrono::Duration::milliseconds((i / per) as i64);
            let ts_text = ts.to_rfc3339_opts(SecondsFormat::Millis, true);
            let id = format!("{batch}_{i}");
            event["id"] = json!(id);
            event["persistenceTimestamp"] = json!(ts_text);
            event["serverTimestamp"] = json!(ts_text);
            event["organization"] = json!({"name": org_name, "id": org_id});
            ids.push(id);
            events.push(event);
        }
        st.generated += count as u64;
        st.insert_events(org_id, events);
        ids
    }

    /// The next `n` requests answer `status` (500, 502, 503 …).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.state().faults.extend((0..n).map(|_| Fault::Status(status)));
    }

    /// The next `n` requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: usize, retry_after_secs: u64) {
        self.state().faults.extend((0..n).map(|_| Fault::Throttle(retry_after_secs)));
    }

    /// Every token issued so far stops working (401), as if it had expired.
    pub fn expire_tokens(&self) {
        self.state().token_generation += 1;
    }

    /// Every response is delayed by `d`.
    pub fn set_delay(&self, d: Duration) {
        self.state().delay = d;
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    pub fn max_requests_in_any_minute(&self, client_id: &str) -> usize {
        self.state().max_requests_in_any_minute(client_id)
    }

    pub fn event_count(&self, org_id: &str) -> usize {
        self.state().events.get(org_id).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests;
