//! A Microsoft Graph security `alerts_v2` emulator (Defender XDR alerts), written from the Graph
//! reference pages (`security-list-alerts_v2`, the `alert` resource, throttling and its limits):
//!
//! * Entra client credentials on the same host, `POST /{tenant}/oauth2/v2.0/token` with
//!   `scope=https://graph.microsoft.com/.default` (and the v1 endpoint with
//!   `resource=https://graph.microsoft.com`); tokens expire after `token_ttl` or all at once.
//! * `GET /v1.0/security/alerts_v2` (and `/{id}`) with `$filter` over the documented properties
//!   (`lastUpdateDateTime`/`createdDateTime` with `eq ne ge gt le lt`, `severity`, `status`,
//!   `serviceSource`, `classification`, `determination`, `assignedTo` with `eq`/`ne`, joined by
//!   `and`), `$top` (`default_top`, most `max_top`, else 400), `$orderby` on the two times,
//!   `$count=true`; newest created first; `@odata.nextLink` an absolute URL keeping the query
//!   and carrying an opaque `$skiptoken` (an offset, so alerts arriving mid-paging shift the
//!   pages as offsets do); absent on the last page. `$skip` is accepted too.
//! * 401 `InvalidAuthenticationToken` for missing, unknown or expired tokens; 429
//!   `TooManyRequests` with `Retry-After` seconds when an app exceeds `rate_limit_per_minute`
//!   in one tenant (150, the documented `/security` alert limit; off unless
//!   `enforce_rate_limit`). Errors are `{"error":{"code","message","innerError":{date,
//!   request-id,client-request-id}}}`.
//!
//! `$top`'s default and maximum are not documented; 2000 is assumed for both.

mod alerts;
mod http;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
pub use alerts::sample_alert;
use http::State;

#[derive(Debug, Clone)]
pub struct Options {
    /// Lifetime of issued tokens, also their `expires_in` (Entra: 3599 s).
    pub token_ttl: Duration,
    /// Alerts per page without `$top`.
    pub default_top: usize,
    /// The largest `$top` accepted.
    pub max_top: usize,
    /// Requests per app per tenant per minute (the documented limit is 150).
    pub rate_limit_per_minute: u32,
    /// Refuse requests over the limit with 429.
    pub enforce_rate_limit: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token_ttl: Duration::from_secs(3599),
            default_top: 2000,
            max_top: 2000,
            rate_limit_per_minute: 150,
            enforce_rate_limit: false,
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

    /// The base URL, `http://127.0.0.1:PORT`, standing for both `login.microsoftonline.com`
    /// (`/{tenant}/oauth2/v2.0/token`) and `graph.microsoft.com` (`/v1.0/…`); next links point here.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// An app registration (client id and secret) in `tenant`.
    pub fn add_app(&self, tenant: &str, client_id: &str, client_secret: &str) {
        let mut api = self.handle.api();
        api.entra.add_app(tenant, client_id, client_secret);
        api.tenant(tenant);
    }

    /// Stores alerts (replacing any with the same `id`). Panics unless each has an `id` and an
    /// RFC 3339 `lastUpdateDateTime`; `sample_alert` builds realistic ones.
    pub fn add_alerts(&self, tenant: &str, alerts: Vec<Value>) {
        self.handle.api().add_alerts(tenant, alerts);
    }

    /// Adds `count` `sample_alert`s created evenly over [`from`, `to`).
    pub fn generate_alerts(&self, tenant: &str, count: u64, from: DateTime<Utc>, to: DateTime<Utc>) {
        let step = (to - from).num_milliseconds() / count.max(1) as i64;
        let alerts = (0..count).map(|n| sample_alert(tenant, n, from + TimeDelta::milliseconds(step * n as i64))).collect();
        self.add_alerts(tenant, alerts);
    }

    /// Merges `changes` into an alert's top-level fields after moving its `lastUpdateDateTime` to
    /// now. False if there is no such alert.
    pub fn update_alert(&self, tenant: &str, id: &str, changes: Value) -> bool {
        self.handle.api().update_alert(tenant, id, changes)
    }

    /// The tenant's alerts as stored, in insertion order.
    pub fn alerts(&self, tenant: &str) -> Vec<Value> {
        self.handle.api().tenant(tenant).clone()
    }

    /// Every token issued so far answers 401.
    pub fn expire_tokens(&self) {
        self.handle.api().entra.expire_all();
    }

    /// The next `n` requests, to any endpoint, answer `status` with code `UnknownError`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 `TooManyRequests` with `Retry-After: <retry_after>`.
    pub fn throttle_next(&self, n: usize, retry_after: Duration) {
        self.handle.inject(n, Fault::Throttle(Some(retry_after.as_secs())));
    }

    /// Every request received so far, in arrival order; the credential is the client id.
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
