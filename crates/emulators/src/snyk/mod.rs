//! A Snyk API emulator, written from Snyk's REST API documentation ("About the REST API",
//! authentication, the REST OpenAPI spec's examples and headers) and the v1 API blueprint:
//! `Authorization: token <t>` and, as some clients send it, the raw token (each configurable);
//! REST `GET /rest/orgs`, `/rest/orgs/{id}/projects` and `/rest/orgs/{id}/issues` with the
//! mandatory `version` (400 without it), `limit` 10–100 in steps of 10, JSON:API bodies whose
//! `links.next` is a host-relative `/rest/…&starting_after=…` URL absent on the last page, and the
//! `snyk-request-id` / `snyk-version-*` headers; v1 `GET /v1/org/{id}/members` as a bare array.
//! An optional per-token limit answers 429 without headers until requests stop for a minute, as
//! the documented 1620 requests per minute do.
//!
//! Projects, issues and members are rendered on demand from their index, so an org of any size
//! costs three counters.

mod http;

use std::net::SocketAddr;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
use http::State;

#[derive(Debug, Clone)]
pub struct Options {
    /// Accept `Authorization: token <t>` (the documented form).
    pub accept_token_scheme: bool,
    /// Accept `Authorization: <t>` with no scheme (what some clients send).
    pub accept_raw_token: bool,
    /// Requests per token per minute (Snyk's REST limit is 1620); `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options { accept_token_scheme: true, accept_raw_token: true, rate_limit_per_minute: None }
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

    /// The base URL, `http://127.0.0.1:PORT` (REST under `/rest`, v1 under `/v1`).
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// An API token that sees no org yet.
    pub fn add_token(&self, token: &str) {
        self.handle.api().add_token(token);
    }

    /// An org visible to `token` (listed in the order added), with no projects, issues or members.
    pub fn add_org(&self, token: &str, org_id: &str, name: &str) {
        self.handle.api().add_org(token, org_id, name);
    }

    pub fn set_projects(&self, org_id: &str, count: u64) {
        self.handle.api().org(org_id).projects = count;
    }

    pub fn set_issues(&self, org_id: &str, count: u64) {
        self.handle.api().org(org_id).issues = count;
    }

    pub fn set_members(&self, org_id: &str, count: u64) {
        self.handle.api().org(org_id).members = count;
    }

    /// The next `n` requests, to any endpoint, answer `status` with a JSON:API error.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 with no rate-limit headers, as Snyk does.
    pub fn throttle_next(&self, n: usize) {
        self.handle.inject(n, Fault::Throttle(None));
    }

    /// Every request received so far, in arrival order; the credential is the token.
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
