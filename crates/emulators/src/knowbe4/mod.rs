//! A KnowBe4 Reporting API emulator, written from KnowBe4's API reference guide (base URL,
//! authentication, request ids, pagination, training enrollments, rate limiting, errors):
//! `Authorization: Bearer <reporting API key>` (401 otherwise); `GET /v1/training/enrollments`
//! paged by `page` (from 1) and `per_page` (default 100, at most 500) as a bare JSON array, `[]`
//! past the end; `X-Request-Id` on every answer. Over the optional per-key limit, or on demand,
//! it answers 429. Whether KnowBe4's 429 carries `Retry-After` is not documented, so by default
//! none is sent; `Options::retry_after` adds one.
//!
//! Enrollments are rendered on demand from their index, so an account of any size costs a counter.

mod http;

use std::net::SocketAddr;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
use http::State;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Requests per key per minute (KnowBe4's burst limit is 50); `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// `Retry-After` seconds on 429 answers; `None` sends no such header.
    pub retry_after: Option<u64>,
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

    /// A reporting API key, standing for an account of its own with no enrollments yet.
    pub fn add_key(&self, key: &str) {
        self.handle.api().account(key);
    }

    /// The account has enrollments 0..count.
    pub fn set_enrollments(&self, key: &str, count: u64) {
        self.handle.api().account(key).enrollments = count;
    }

    /// The next `n` requests answer `status` with a JSON error message.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429, with `Retry-After` only if `Options::retry_after` is set.
    pub fn throttle_next(&self, n: usize) {
        self.handle.inject(n, Fault::Throttle(None));
    }

    /// Every request received so far, in arrival order; the credential is the API key.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.handle.requests()
    }

    /// The most requests sent with `key` within any 60 s.
    pub fn max_requests_in_any_minute(&self, key: &str) -> usize {
        self.handle.max_requests_in_any_minute(key)
    }

    /// Stops serving and frees the port.
    pub async fn stop(self) {
        self.handle.stop().await;
    }
}
