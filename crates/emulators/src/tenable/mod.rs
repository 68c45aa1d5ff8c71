//! A Tenable Vulnerability Management (Tenable.io) emulator, written from Tenable's developer
//! documentation (exports, rate and concurrency limiting) and pyTenable's export client and
//! recorded cassettes: `X-ApiKeys` authentication (with or without a space after `;`); export
//! jobs for vulnerabilities, assets (v1 and v2), compliance findings and web-application
//! vulnerabilities (`/was/v1/export/vulns`), each walking `QUEUED → PROCESSING → FINISHED` over
//! status polls with chunks becoming available out of order and with gaps, 409 `active_job_id`
//! for a duplicate of a running job, cancellation, and jobs that end in `ERROR` or whose chunks
//! expire; 429 with `retry-after` for the per-key rate limit, more than ten running exports, or
//! on demand. Every answer carries `X-Request-Uuid`.
//!
//! Records are rendered from (API key, index) when a chunk is downloaded, so a two-million-record
//! export costs a counter. Request filters are echoed in the status but not applied.

mod http;
mod records;

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
use http::State;
pub use records::VULNS_PER_ASSET;

#[derive(Debug, Clone)]
pub struct Options {
    /// Status polls that answer `QUEUED` before a job starts.
    pub queued_polls: u32,
    /// Status polls that answer `PROCESSING` (compliance: `READY` once a chunk is available),
    /// each making more chunks available; the next poll answers `FINISHED`.
    pub processing_polls: u32,
    /// Requests per API key per minute; `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// Every job also has one empty chunk (`[]`), as real exports sometimes do.
    pub empty_chunk: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { queued_polls: 1, processing_polls: 2, rate_limit_per_minute: None, empty_chunk: false }
    }
}

/// Which data an export job reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportKind {
    Vulns,
    Assets,
    Compliance,
    WasVulns,
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

    /// API keys of one container (tenant); its data starts empty.
    pub fn add_keys(&self, access_key: &str, secret_key: &str) {
        self.handle.api().add_keys(access_key, secret_key);
    }

    /// How many records exports of `kind` by this key's container produce; jobs created later
    /// see the new count.
    pub fn set_count(&self, access_key: &str, kind: ExportKind, count: u64) {
        self.handle.api().set_count(access_key, kind, count);
    }

    /// Shorthand for `set_count(access_key, ExportKind::Vulns, count)`.
    pub fn set_vulnerabilities(&self, access_key: &str, count: u64) {
        self.set_count(access_key, ExportKind::Vulns, count);
    }

    /// The next `n` export jobs created end in `ERROR` after processing, with half their chunks
    /// available and the rest in `chunks_failed`.
    pub fn fail_next_jobs(&self, n: usize) {
        self.handle.api().failing_jobs += n;
    }

    /// The next export job created expires `after` its status first says `FINISHED` (zero: at
    /// once): its chunks then answer 404.
    pub fn expire_next_job(&self, after: Duration) {
        self.handle.api().expiring_jobs.push_back(after);
    }

    /// The next `n` requests, to any endpoint, answer `status` with Tenable's error body.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 with `retry-after: retry_after_secs`.
    pub fn throttle_next(&self, n: usize, retry_after_secs: u64) {
        self.handle.inject(n, Fault::Throttle(Some(retry_after_secs)));
    }

    /// Every request received so far, in arrival order; the credential is the access key.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.handle.requests()
    }

    /// The most requests sent with `access_key` within any 60 s.
    pub fn max_requests_in_any_minute(&self, access_key: &str) -> usize {
        self.handle.max_requests_in_any_minute(access_key)
    }

    /// Stops serving and frees the port.
    pub async fn stop(self) {
        self.handle.stop().await;
    }
}
