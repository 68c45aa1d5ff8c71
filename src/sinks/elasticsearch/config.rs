//! `type: elasticsearch` settings: what the config file holds, its checks, and the sink it builds.

use super::EsSink;
use crate::encode::Format;
use crate::settings::template::PathTemplate;
use crate::settings::{Secret, duration};
use crate::sinks::splunk_hec::Compression;
use crate::sinks::{Sink, SinkContext, SinkSettings, http};
use serde::{Deserialize, Deserializer};
use std::num::NonZeroUsize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsConfig {
    /// The cluster's URL, e.g. `https://es.example.com:9200`. Credentials in it
    /// (`https://user:password@es.example.com:9200`) are sent as HTTP Basic.
    pub url: String,
    /// Index (or data stream) name; `%YYYY %MM %DD %hh` (date received), `%TENANCY`, `%TAG`
    /// (source name). Default: `sluice-%YYYY.%MM.%DD`.
    #[serde(default = "default_index", deserialize_with = "index_de")]
    pub index: PathTemplate,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `Authorization: ApiKey <api_key>`: the base64 `id:key` that Elasticsearch's
    /// create-API-key answer calls `encoded`.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// An ingest pipeline to run on every document.
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default = "default_format")]
    pub format: Format,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub tls: crate::settings::tls::TlsConfig,
    #[serde(default = "http::default_timeout", with = "duration")]
    pub timeout: Duration,
    #[serde(default = "http::default_concurrency")]
    pub concurrency: NonZeroUsize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Regular indices.
    #[default]
    Bulk,
    /// A data stream: `index` names it.
    DataStream,
}

fn default_index() -> PathTemplate {
    PathTemplate::parse("sluice-%YYYY.%MM.%DD").expect("a valid template")
}
fn index_de<'de, D: Deserializer<'de>>(d: D) -> Result<PathTemplate, D::Error> {
    let text = String::deserialize(d)?;
    if text.contains("%UUID") {
        return Err(serde::de::Error::custom("%UUID is not allowed in an index name"));
    }
    // Variables are upper case; the literal parts must not be (Elasticsearch refuses them).
    let literal = ["%YYYY", "%MM", "%DD", "%hh", "%TENANCY", "%TAG"].iter().fold(text.clone(), |t, v| t.replace(v, ""));
    if literal.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(serde::de::Error::custom("index names must be lower case"));
    }
    PathTemplate::parse(&text).map_err(serde::de::Error::custom)
}
fn default_format() -> Format {
    Format::Ecs
}

impl SinkSettings for EsConfig {
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(EsSink::new(self.clone(), ctx)?))
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = crate::settings::url_problem(&self.url) {
            out.push(("url", p));
        }
        if self.password.is_some() && self.username.is_none() {
            out.push(("username", "required with password".into()));
        }
        if self.username.is_some() && self.api_key.is_some() {
            out.push(("api_key", "give either username/password or api_key, not both".into()));
        }
        if (self.username.is_some() || self.api_key.is_some()) && http::Endpoint::has_credentials(&self.url) {
            out.push(("url", "holds credentials as well as username or api_key: give them in one place".into()));
        }
        if !self.format.is_json() {
            out.push(("format", "Elasticsearch documents must be JSON: use ecs, event, raw, idmefv2 …".into()));
        }
        out.extend(self.tls.problems("tls.ca_file"));
        out
    }
}
