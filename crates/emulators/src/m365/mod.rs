//! An Office 365 Management Activity API emulator, written from Microsoft's API reference
//! (`office-365-management-activity-api-reference.md`, the schema and troubleshooting pages, the
//! getting-started page for the token requests) and Elastic's o365 mock for what the reference
//! leaves out (AF20024 on a second start):
//!
//! * Entra client credentials on the same host: `POST /{tenant}/oauth2/v2.0/token`
//!   (`scope=https://manage.office.com/.default`) and the v1 `POST /{tenant}/oauth2/token`
//!   (`resource=https://manage.office.com`, numbers as strings); tokens expire after
//!   `token_ttl` by the emulator's clock, or all at once with `expire_tokens`.
//! * Under `/api/v1.0/{tenant}/activity/feed/`: `POST subscriptions/start?contentType=X`
//!   (400 `AF20024` when already enabled), `POST subscriptions/stop`, `GET subscriptions/list`,
//!   `GET subscriptions/content?contentType=X[&startTime=&endTime=][&nextPage=]` (`AF20022` until
//!   the type is started; both times or neither, ≤ 24 h apart else `AF20030`, start ≤ 7 days ago
//!   else `AF20055`; blobs with `startTime <= contentCreated < endTime`, oldest first; a
//!   `NextPageUri` header with the same times plus `nextPage` while more remain, the default
//!   24-h window written out when the request had none; `AF20031` for a bad `nextPage`), and
//!   `GET audit/{contentId}`: the blob's records as a JSON array (`AF20051` once past its
//!   `contentExpiration`, `AF20050` unknown).
//! * A token for another tenant answers 401 `AF20010`; a missing, unknown or expired one 401
//!   "Authorization has been denied for this request.". Requests per tenant per minute beyond
//!   `rate_limit_per_minute` answer `AF429` with `throttle_status` (429; the troubleshooting page
//!   shows 403). No `Retry-After` is sent, as none is documented.
//!
//! The emulator has its own clock (real time plus an offset `advance_clock` moves), used for
//! token expiry, the default and 7-day windows and blob expiry.

mod http;
mod records;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
use http::State;
pub use records::{CONTENT_TYPES, creation_time, sample_record};

#[derive(Debug, Clone)]
pub struct Options {
    /// Lifetime of issued tokens, also their `expires_in` (Entra: 3599 s).
    pub token_ttl: Duration,
    /// Blobs listed per `subscriptions/content` page (undocumented; service-defined).
    pub content_page_size: usize,
    /// Most records in one blob.
    pub records_per_blob: usize,
    /// Records in the same slice of this length share a blob.
    pub blob_span: TimeDelta,
    /// A blob's `contentCreated` is its last record's time plus this.
    pub publication_delay: TimeDelta,
    /// `contentExpiration` − `contentCreated` (7 days).
    pub blob_retention: TimeDelta,
    /// Requests per tenant per minute before `AF429` (the documented baseline is 2000).
    pub rate_limit_per_minute: u32,
    /// The HTTP status of `AF429` answers: 429, or 403 as the troubleshooting page shows.
    pub throttle_status: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token_ttl: Duration::from_secs(3599),
            content_page_size: 100,
            records_per_blob: 100,
            blob_span: TimeDelta::minutes(5),
            publication_delay: TimeDelta::zero(),
            blob_retention: TimeDelta::days(7),
            rate_limit_per_minute: 2000,
            throttle_status: 429,
        }
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

    /// The base URL, `http://127.0.0.1:PORT`: the token endpoints are under `/{tenant}/oauth2/`,
    /// the API under `/api/v1.0/{tenant}/activity/feed/`, and `contentUri`s and `NextPageUri`s
    /// point here.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// An app registration (client id and secret) in `tenant` (a GUID), creating the tenant.
    pub fn add_app(&self, tenant: &str, client_id: &str, client_secret: &str) {
        let mut api = self.handle.api();
        api.entra.add_app(tenant, client_id, client_secret);
        api.tenant(tenant);
    }

    /// Enables a subscription as `subscriptions/start` would.
    pub fn start_subscription(&self, tenant: &str, content_type: &str) {
        self.handle.api().start_subscription(tenant, content_type);
    }

    /// Adds audit records created at the given times, grouped into content blobs; returns the new
    /// blobs' content ids. Missing `CreationTime`, `Id` and `OrganizationId` are filled in.
    /// Panics on an unknown content type; `sample_record` builds realistic records.
    pub fn add_records(&self, tenant: &str, content_type: &str, records: Vec<(DateTime<Utc>, Value)>) -> Vec<String> {
        self.handle.api().add_records(tenant, content_type, records)
    }

    /// Adds `count` `sample_record`s spread evenly over [`from`, `to`); returns the content ids.
    pub fn generate_records(&self, tenant: &str, content_type: &str, count: u64, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
        let step = (to - from).num_milliseconds() / count.max(1) as i64;
        let records = (0..count)
            .map(|n| {
                let at = from + TimeDelta::milliseconds(step * n as i64);
                (at, sample_record(tenant, content_type, n, at))
            })
            .collect();
        self.add_records(tenant, content_type, records)
    }

    /// The blob answers `AF20051` from now on. False if there is no such blob.
    pub fn expire_blob(&self, tenant: &str, content_id: &str) -> bool {
        self.handle.api().expire_blob(tenant, content_id)
    }

    /// Moves the emulator's clock forward (or back, with a negative delta).
    pub fn advance_clock(&self, by: TimeDelta) {
        self.handle.api().offset += by;
    }

    /// The emulator's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.handle.api().now()
    }

    /// Every token issued so far answers 401.
    pub fn expire_tokens(&self) {
        self.handle.api().entra.expire_all();
    }

    /// The next `n` requests, to any endpoint, answer `status` with `AF50000`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer `AF429` with `throttle_status`.
    pub fn throttle_next(&self, n: usize) {
        self.handle.inject(n, Fault::Throttle(None));
    }

    /// Every request received so far, in arrival order; the credential is the client id (of the
    /// token form or of the bearer token).
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
