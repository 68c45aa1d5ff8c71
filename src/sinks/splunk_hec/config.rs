//! `type: splunk_hec` settings: what the config file holds, its checks, and the sink it builds.

use super::HecSink;
use crate::encode::Format;
use crate::settings::{Secret, duration};
use crate::sinks::{Sink, SinkContext, SinkSettings, http};
use serde::Deserialize;
use std::num::NonZeroUsize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecConfig {
    /// The HEC base URL, e.g. `https://splunk.example.com:8088`.
    pub url: String,
    pub token: Secret,
    /// Target index; absent: the token's default index.
    #[serde(default)]
    pub index: Option<String>,
    #[serde(default = "default_sourcetype")]
    pub sourcetype: String,
    /// `source` of every event; absent: `sluice:<source name>`.
    #[serde(default)]
    pub source: Option<String>,
    /// `host` of every event; absent: the host the event is about (its analyzer), else this
    /// machine's name.
    #[serde(default)]
    pub host: Option<String>,
    /// The document under `event`: `event` (default), `ecs`, `idmefv2`, `raw`, `cef`, `leef` …
    #[serde(default = "default_format")]
    pub format: Format,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub acknowledgements: AckConfig,
    #[serde(default)]
    pub tls: crate::settings::tls::TlsConfig,
    #[serde(default = "http::default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Requests in flight at once.
    #[serde(default = "http::default_concurrency")]
    pub concurrency: NonZeroUsize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AckConfig {
    pub enabled: bool,
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How long to wait for an acknowledgement before sending the request again.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for AckConfig {
    fn default() -> Self {
        AckConfig { enabled: false, poll_interval: Duration::from_millis(500), timeout: Duration::from_secs(60) }
    }
}

fn default_sourcetype() -> String {
    "_json".into()
}
fn default_format() -> Format {
    Format::Event
}

impl SinkSettings for HecConfig {
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(HecSink::new(self.clone(), ctx)?))
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = crate::settings::url_problem(&self.url) {
            out.push(("url", p));
        } else if http::Endpoint::has_credentials(&self.url) {
            out.push(("url", "must not hold credentials: HEC authenticates with `token`".into()));
        }
        if self.token.expose().trim().is_empty() {
            out.push(("token", "must not be empty".into()));
        }
        out.extend(self.tls.problems("tls.ca_file"));
        if self.acknowledgements.enabled && self.acknowledgements.poll_interval.is_zero() {
            out.push(("acknowledgements.poll_interval", "must be above 0".into()));
        }
        out
    }
}
