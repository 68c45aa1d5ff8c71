//! A CrowdStrike Falcon API emulator, written from CrowdStrike's API documentation and its
//! published clients (falconpy's endpoint tables and samples, gofalcon's generated models):
//! OAuth 2 client credentials (`POST /oauth2/token` answering 201, optional `member_cid`) with
//! expiring tokens; hosts (`devices/queries/devices/v1`, whose `meta.pagination.offset` is the
//! next page's offset and which refuses offsets from 10 000, the `devices-scroll` variant, and
//! `devices/entities/devices/v2`); Zero Trust assessments; Spotlight's combined vulnerabilities
//! with `after` tokens and facets; the Alerts API (queries, entities, and the combined endpoint
//! with FQL filters on timestamps, sorting and `after` cursors). Every answer carries
//! `X-RateLimit-Limit` / `X-RateLimit-Remaining`, counted per CID in one-minute windows; a 429
//! adds `X-RateLimit-RetryAfter` as Unix seconds. No `X-Cs-Region` header is sent, so clients
//! that autodiscover the region stay on this host.
//!
//! Hosts and vulnerabilities are generated on demand from their index, so a tenant of any size
//! costs a counter. FQL filters on hosts and vulnerabilities are accepted but not evaluated;
//! scroll tokens do not expire.

mod alerts;
mod http;
mod records;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
pub use alerts::sample_alert;
use http::State;

#[derive(Debug, Clone)]
pub struct Options {
    /// Lifetime of issued tokens, also their `expires_in`; the API's is 1799 s.
    pub token_ttl: Duration,
    /// Requests per CID per minute (all clients of the CID share it); the API's is 6000.
    pub rate_limit_per_minute: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { token_ttl: Duration::from_secs(1799), rate_limit_per_minute: 6000 }
    }
}

/// A running emulator; it stops when dropped.
pub struct Emulator {
    handle: Handle<State>,
}

impl Emulator {
    /// Binds `listen` (port 0 picks a free one) and serves in a spawned task.
    pub async fn start(listen: SocketAddr, options: Options) -> std::io::Result<Emulator> {
        Ok(Emulator { handle: Handle::start(listen, State::new(options)).await? })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// API client credentials of the tenant `cid`. Adding a client id again replaces it.
    pub fn add_client(&self, client_id: &str, client_secret: &str, cid: &str) {
        self.handle.api().add_client(client_id, client_secret, cid);
    }

    /// Lets `client_id` (a parent CID's client) ask for tokens of the child `member_cid`.
    pub fn add_member_cid(&self, client_id: &str, member_cid: &str) {
        self.handle.api().add_member(client_id, member_cid);
    }

    /// The tenant has hosts 0..count.
    pub fn set_hosts(&self, cid: &str, count: u64) {
        self.handle.api().tenant(cid).hosts = count;
    }

    /// The tenant has Spotlight vulnerabilities 0..count, spread over its hosts.
    pub fn set_vulnerabilities(&self, cid: &str, count: u64) {
        self.handle.api().tenant(cid).vulnerabilities = count;
    }

    /// Stores alerts (replacing any with the same `composite_id`). Panics unless each has a
    /// `composite_id`; `sample_alert` builds realistic ones.
    pub fn add_alerts(&self, cid: &str, alerts: Vec<Value>) {
        self.handle.api().add_alerts(cid, alerts);
    }

    /// Merges `changes` into an alert's top-level fields and, unless `changes` sets it, moves its
    /// `updated_timestamp` to now. False if there is no such alert.
    pub fn update_alert(&self, cid: &str, composite_id: &str, changes: Value) -> bool {
        self.handle.api().update_alert(cid, composite_id, changes)
    }

    /// Every token issued so far answers 401 `access denied, invalid bearer token`.
    pub fn expire_tokens(&self) {
        self.handle.api().expire_tokens();
    }

    /// The next `n` requests, to any endpoint, answer `status` with the error envelope.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 `API rate limit exceeded.` with `X-RateLimit-Remaining: 0`
    /// and `X-RateLimit-RetryAfter` = now + `retry_after` (Unix seconds).
    pub fn throttle_next(&self, n: usize, retry_after: Duration) {
        self.handle.inject(n, Fault::Throttle(Some(retry_after.as_secs())));
    }

    /// Every request received so far, rejected and reset ones included, in arrival order; the
    /// credential is the client id (from the token form or the bearer token).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.handle.requests()
    }

    /// The most requests `client_id` sent within any 60 s.
    pub fn max_requests_in_any_minute(&self, client_id: &str) -> usize {
        self.handle.max_requests_in_any_minute(client_id)
    }

    /// Stops serving and frees the port.
    pub async fn stop(self) {
        self.handle.stop().await;
    }
}
