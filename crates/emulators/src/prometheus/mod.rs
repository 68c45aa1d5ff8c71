//! A Prometheus server emulator for the alerts API, written from Prometheus's HTTP API reference
//! (`GET /api/v1/alerts`, the `{"status":"success","data":…}` / `{"status":"error","errorType",
//! "error"}` envelopes) and what the IDMEFv2 Prometheus connector reads: `data.alerts[]` with
//! `labels`, `annotations`, `state` (`firing` | `pending`), `activeAt` (RFC 3339 with
//! nanoseconds) and `value` (a float as text, `1e+00`). Active alerts are listed in the order
//! they became active; resolved ones drop out of the list, as on a real server.
//!
//! Optional HTTP Basic auth (Prometheus's web config) answers 401 with `WWW-Authenticate`
//! otherwise. `/-/healthy` and `/-/ready` answer 200. Prometheus has no rate limits:
//! `throttle_next` stands for a proxy in front of it (429 with `Retry-After`).

mod http;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
use http::State;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `(user, password)` every request must send as HTTP Basic; `None` serves anyone.
    pub basic_auth: Option<(String, String)>,
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

    /// The server URL, `http://127.0.0.1:PORT`; the API is under `/api/v1/`.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// An alert fires now (state `firing`, `activeAt` now). An active alert with the same label
    /// set is replaced.
    pub fn fire(&self, labels: &[(&str, &str)], annotations: &[(&str, &str)]) {
        self.fire_at(labels, annotations, "firing", Utc::now());
    }

    /// An alert becomes active in `state` (`firing` or `pending`) at `active_at`.
    pub fn fire_at(&self, labels: &[(&str, &str)], annotations: &[(&str, &str)], state: &str, active_at: DateTime<Utc>) {
        self.handle.api().fire(labels, annotations, state, active_at);
    }

    /// Every active alert whose labels include all of `labels` stops being active; how many did.
    pub fn resolve(&self, labels: &[(&str, &str)]) -> usize {
        self.handle.api().resolve(labels)
    }

    /// The next `n` requests answer `status` with `{"status":"error","errorType":"internal"}`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 with `Retry-After: <retry_after>` (as a proxy would).
    pub fn throttle_next(&self, n: usize, retry_after: Duration) {
        self.handle.inject(n, Fault::Throttle(Some(retry_after.as_secs())));
    }

    /// Every request received so far, in arrival order; the credential is the Basic user.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.handle.requests()
    }

    /// The most requests `user` sent within any 60 s.
    pub fn max_requests_in_any_minute(&self, user: &str) -> usize {
        self.handle.max_requests_in_any_minute(user)
    }

    /// Stops serving and frees the port.
    pub async fn stop(self) {
        self.handle.stop().await;
    }
}
