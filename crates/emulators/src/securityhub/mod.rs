//! An AWS Security Hub emulator for GetFindings, written from botocore's `securityhub/2018-10-26`
//! service model and paginator (shapes, limits, error names), AWS's ASFF pages (required
//! attributes, enums) and moto's implementation:
//!
//! * `POST /findings` with a SigV4 `Authorization: AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/
//!   <region>/securityhub/aws4_request, SignedHeaders=…host…, Signature=<64 hex>` header and
//!   `X-Amz-Date` (same day as the scope, within 15 minutes of now). The shape and the key id are
//!   checked, the signature is not: 403 `MissingAuthenticationTokenException`,
//!   `IncompleteSignatureException`, `InvalidSignatureException`, `SignatureDoesNotMatch` or
//!   `UnrecognizedClientException` otherwise. The region of the credential scope selects the
//!   data; a region without Security Hub enabled answers 401 `InvalidAccessException`.
//! * Body `Filters` (string filters with every comparison, date filters with `Start`/`End` or
//!   `DateRange`, on the common attributes: `Id`, `AwsAccountId`, `ProductName`, `GeneratorId`,
//!   `Region`, `Title`, `RecordState`, `WorkflowStatus`, `SeverityLabel`, `ComplianceStatus`,
//!   `ResourceType`, `ResourceId`, `CreatedAt`, `UpdatedAt`, …; others are accepted and ignored),
//!   `SortCriteria` (default `UpdatedAt` desc), `MaxResults` 1–100 (default 100, else 400
//!   `InvalidInputException`), `NextToken`. The answer is `{"Findings":[…],"NextToken":"…"}`,
//!   `NextToken` absent on the last page. The token is an offset.
//! * Errors carry `x-amzn-ErrorType: <Name>` and `{"Code","Message"}`; requests over
//!   `rate_limit_per_minute` per key answer 429 `LimitExceededException` when enforced.

mod findings;
mod http;

use std::net::SocketAddr;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle};
pub use findings::sample_finding;
use http::State;

#[derive(Debug, Clone)]
pub struct Options {
    /// GetFindings requests per access key per minute (AWS: about 3 a second, bursts of 6).
    pub rate_limit_per_minute: u32,
    /// Refuse requests over the limit with 429 `LimitExceededException`.
    pub enforce_rate_limit: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { rate_limit_per_minute: 180, enforce_rate_limit: false }
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

    /// The endpoint URL, `http://127.0.0.1:PORT` (for `AWS_ENDPOINT_URL_SECURITYHUB`).
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// An access key id requests may be signed with (any secret signs; signatures are not checked).
    pub fn add_key(&self, access_key_id: &str) {
        self.handle.api().add_key(access_key_id);
    }

    /// Enables Security Hub in `region` (adding findings there does too).
    pub fn enable_region(&self, region: &str) {
        self.handle.api().region(region);
    }

    /// Stores findings in `region` (replacing any with the same `Id`). Panics unless each has an
    /// `Id` and an RFC 3339 `UpdatedAt`; `sample_finding` builds realistic ones.
    pub fn add_findings(&self, region: &str, findings: Vec<Value>) {
        self.handle.api().add_findings(region, findings);
    }

    /// Adds `count` `sample_finding`s of `account` updated evenly over [`from`, `to`).
    pub fn generate_findings(&self, region: &str, account: &str, count: u64, from: DateTime<Utc>, to: DateTime<Utc>) {
        let step = (to - from).num_milliseconds() / count.max(1) as i64;
        let findings = (0..count).map(|n| sample_finding(region, account, n, from + TimeDelta::milliseconds(step * n as i64))).collect();
        self.add_findings(region, findings);
    }

    /// Merges `changes` into a finding's top-level fields after moving its `UpdatedAt` to now.
    /// False if there is no such finding.
    pub fn update_finding(&self, region: &str, id: &str, changes: Value) -> bool {
        self.handle.api().update_finding(region, id, changes)
    }

    /// The region's findings as stored, in insertion order.
    pub fn findings(&self, region: &str) -> Vec<Value> {
        self.handle.api().region(region).clone()
    }

    /// The next `n` requests answer `status` with `InternalException`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 `LimitExceededException`.
    pub fn throttle_next(&self, n: usize) {
        self.handle.inject(n, Fault::Throttle(None));
    }

    /// Every request received so far, in arrival order; the credential is the access key id.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.handle.requests()
    }

    /// The most requests signed with `access_key_id` within any 60 s.
    pub fn max_requests_in_any_minute(&self, access_key_id: &str) -> usize {
        self.handle.max_requests_in_any_minute(access_key_id)
    }

    /// Stops serving and frees the port.
    pub async fn stop(self) {
        self.handle.stop().await;
    }
}
