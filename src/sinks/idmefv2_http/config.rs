//! `type: idmefv2_http` settings: what the config file holds, its checks, and the sink it builds.

use super::IdmefHttpSink;
use crate::encode::idmefv2;
use crate::settings::{Secret, duration};
use crate::sinks::{Sink, SinkContext, SinkSettings};
use serde::Deserialize;
use std::num::NonZeroUsize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdmefHttpConfig {
    /// Where to POST, e.g. `http://concerto:4690/` or `https://siem/api_idmefv2/`. Credentials in
    /// it (`https://user:password@siem/`) are sent as HTTP Basic, like `username`/`password`.
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: NonZeroUsize,
    /// Attempts per message before the batch is left in the outbox (overrides `retry.max_attempts`).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Accept a server certificate that does not verify (test setups only).
    #[serde(default)]
    pub tls_insecure: bool,
    /// `2.D.V08` (default) or `2.D.V04` for receivers that still want the older draft.
    #[serde(default = "default_version")]
    pub version: String,
}

fn default_version() -> String {
    idmefv2::VERSION.to_string()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrency() -> NonZeroUsize {
    NonZeroUsize::new(8).unwrap()
}
fn default_attempts() -> u32 {
    5
}

impl SinkSettings for IdmefHttpConfig {
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(IdmefHttpSink::new(self.clone(), ctx)?))
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = crate::settings::url_problem(&self.url) {
            out.push(("url", p));
        }
        if self.password.is_some() && self.username.is_none() {
            out.push(("username", "required with password".to_string()));
        }
        if self.username.is_some() && crate::sinks::http::Endpoint::has_credentials(&self.url) {
            out.push(("url", "holds credentials as well as username: give them in one place".to_string()));
        }
        if self.version != idmefv2::VERSION && self.version != idmefv2::VERSION_V04 {
            out.push(("version", format!("`{}` is not supported; use {} or {}", self.version, idmefv2::VERSION, idmefv2::VERSION_V04)));
        }
        if self.max_attempts == 0 {
            out.push(("max_attempts", "must be at least 1".to_string()));
        }
        out
    }
}
