//! `type: withsecure` settings.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, de};

use crate::settings::{Secret, duration};

pub const DEFAULT_API_URL: &str = "https://api.connect.withsecure.com";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithSecureConfig {
    #[serde(deserialize_with = "crate::settings::secret::scalar_string")]
    pub client_id: String,
    pub client_secret: Secret,
    /// Base URL of the Elements API; point it at a proxy or an emulator.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Time between collection cycles (a little jitter is added).
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// Every request of this source (token, organizations, pages) counts.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_minute: NonZeroU32,
    #[serde(default)]
    pub start_mode: StartMode,
    /// Where `start_mode: fixed` starts (RFC 3339).
    #[serde(default, deserialize_with = "rfc3339")]
    pub start_date: Option<DateTime<Utc>>,
    /// `engineGroup` values sent with every query.
    #[serde(default = "default_engine_groups")]
    pub engine_groups: Vec<String>,
    /// Whose events: the credentials' own organization (default), `all` the organizations a
    /// partner account can see, or a list of organization ids.
    #[serde(default)]
    pub organizations: Organizations,
    /// Timeout of each HTTP request.
    #[serde(default = "default_timeout", with = "duration")]
    pub request_timeout: Duration,
    /// Optional `language` parameter (localises `message`/`description` where the API has them).
    #[serde(default)]
    pub language: Option<String>,
    /// A `state/<client>.json` of the original Python collector; its position is imported when
    /// this source has none yet.
    #[serde(default)]
    pub legacy_state_file: Option<PathBuf>,
}

/// Where a position starts. `now` and `fixed` apply once per organization and setting: the
/// position records the setting it began with, so a restart resumes and a changed setting starts
/// over (see `start_position` in the source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StartMode {
    /// Resume from the saved position; without one, start now.
    #[default]
    State,
    /// Start now, skipping what the saved position has not collected yet.
    Now,
    /// Start at `start_date` (backfill, migration).
    Fixed,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Organizations {
    #[default]
    Own,
    All,
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for Organizations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "all" => Ok(Organizations::All),
            Raw::Word(w) if w == "own" => Ok(Organizations::Own),
            Raw::Word(w) => Err(de::Error::custom(format!("expected `all`, `own` or a list of organization ids, found `{w}`"))),
            Raw::List(ids) if ids.is_empty() => Ok(Organizations::Own),
            Raw::List(ids) => Ok(Organizations::List(ids)),
        }
    }
}

fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| de::Error::custom(format!("`{text}` is not an RFC 3339 time ({e}); e.g. 2025-01-01T00:00:00Z")))
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}
fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_rate_limit() -> NonZeroU32 {
    NonZeroU32::new(60).unwrap()
}
fn default_engine_groups() -> Vec<String> {
    vec!["epp".into(), "edr".into()]
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl crate::sources::SourceSettings for WithSecureConfig {
    fn run(&self, ctx: crate::sources::SourceContext) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(super::run(self.clone(), ctx))
    }

    /// Checks across fields; returns (field, reason) pairs.
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.start_mode == StartMode::Fixed && self.start_date.is_none() {
            out.push(("start_date", "required when start_mode is `fixed`".to_string()));
        }
        if self.engine_groups.is_empty() {
            out.push(("engine_groups", "needs at least one engine group (the API requires it)".to_string()));
        }
        if let Err(e) = reqwest::Url::parse(&self.api_url) {
            out.push(("api_url", format!("not a URL: {e}")));
        }
        if self.client_id.is_empty() {
            out.push(("client_id", "must not be empty".to_string()));
        }
        if self.interval.is_zero() {
            out.push(("interval", "must be greater than zero".to_string()));
        }
        out
    }
}
