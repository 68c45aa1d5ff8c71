//! An Okta emulator for the users and System Log APIs, written from Okta's API reference (Users
//! `listUsers`, System Log, rate limits, error codes) and the management OpenAPI spec the Okta
//! SDKs are generated from: `Authorization: SSWS <token>` (401 `E0000011` otherwise); users as a
//! bare array paged by `Link: <…>; rel="next"` headers whose `after` is the last user's id, absent
//! on the last page, `DEPROVISIONED` users left out unless a filter asks for them; the System
//! Log with polling requests (no `until`, ascending: a `next` link on every page, empty ones
//! included) and bounded ones (`since` + `until`: finite, `published` order). Every answer carries
//! `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining`, `X-Rate-Limit-Reset` (Unix seconds) and
//! `Date`, counted per token and endpoint in one-minute windows; exhausted windows answer 429
//! `E0000047` when enforcement is on.
//!
//! Each token stands for one org. Users are rendered on demand from their index, so an org of any
//! size costs two counters; System Log events are stored as given.

mod http;
mod records;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
use http::State;
pub use records::sample_log_event;

#[derive(Debug, Clone)]
pub struct Options {
    /// Requests per token per minute to `/api/v1/users` (Okta: 100 to 600 by plan).
    pub users_rate_limit: u32,
    /// Requests per token per minute to `/api/v1/logs` (Okta: 20 to 120 by plan).
    pub logs_rate_limit: u32,
    /// Refuse requests over the limits with 429; otherwise the headers count down to 0 only.
    pub enforce_rate_limits: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { users_rate_limit: 600, logs_rate_limit: 120, enforce_rate_limits: false }
    }
}

/// A running emulator; it stops when dropped.
pub struct Emulator {
    handle: Handle<State>,
}

impl Emulator {
    /// Binds `listen` (port 0 picks a free one) and serves in a spawned task.
    pub async fn start(listen: SocketAddr, options: Options) -> std::io::Result<Emulator> {
        let handle = Handle::start(listen, State::new(options)).await?;
        handle.api().base = handle.url();
        Ok(Emulator { handle })
    }

    /// The org URL, `http://127.0.0.1:PORT`; `Link` headers point here.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// An API token, standing for an org of its own (no users, no events yet).
    pub fn add_token(&self, token: &str) {
        self.handle.api().org(token);
    }

    /// The org has `count` users listed by default, plus `deprovisioned` DEPROVISIONED ones spread
    /// among them (listed only when filtered for).
    pub fn set_users(&self, token: &str, count: u64, deprovisioned: u64) {
        let mut api = self.handle.api();
        let org = api.org(token);
        org.users = count;
        org.deprovisioned = deprovisioned;
    }

    /// Appends System Log events, persisted now, in the order given. Panics unless each has a
    /// `uuid` and an RFC 3339 `published`; `sample_log_event` builds realistic ones.
    pub fn add_log_events(&self, token: &str, events: Vec<Value>) {
        self.handle.api().add_log_events(token, events);
    }

    /// The next `n` requests, to any endpoint, answer `status` with Okta's error body (`E0000009`).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 `E0000047` with `X-Rate-Limit-Remaining: 0` and
    /// `X-Rate-Limit-Reset` = now + `reset_after`.
    pub fn throttle_next(&self, n: usize, reset_after: Duration) {
        self.handle.inject(n, Fault::Throttle(Some(reset_after.as_secs())));
    }

    /// Every request received so far, in arrival order; the credential is the SSWS token.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.handle.requests()
    }

    /// The most requests sent with `token` within any 60 s.
    pub fn max_requests_in_any_minute(&self, token: &str) -> usize {
        self.handle.max_requests_in_any_minute(token)
    }

    /// Stops serving and frees the port.
    pub async fn stop(self) {
        self.handle.stop().await;
    }
}
