//! `type: s3` settings.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::encode::Format;
use crate::settings::template::PathTemplate;
use crate::settings::{Secret, duration};
use crate::sinks::http;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Object name: `%TAG %TENANCY %UUID %YYYY %MM %DD %hh %mm %ss`. `%UUID` is one value per
    /// stream object, and a snapshot's `_upload_id`.
    #[serde(deserialize_with = "template_de")]
    pub key: PathTemplate,
    /// Any S3-compatible endpoint (`https://minio.example.org:9000`); AWS when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Default `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    #[serde(default)]
    pub path_style: bool,
    /// Static credentials; without them, the environment (`AWS_ACCESS_KEY_ID` …, web identity,
    /// ECS) or the instance profile.
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// Where each complete snapshot is also copied (`backup/%TAG/%TENANCY.json`, the original
    /// data collectors' `STORE_AWS_S3_BACKUP`); only `%TAG` and `%TENANCY`.
    #[serde(default, deserialize_with = "optional_template_de")]
    pub backup_key: Option<PathTemplate>,
    /// Stream objects' encoding; snapshots are always plain JSON arrays.
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub compression: Compression,
    /// A stream object holds at most this many bytes (before compression); a larger write is
    /// several objects.
    #[serde(default = "default_max_bytes", deserialize_with = "crate::telemetry::size")]
    pub max_bytes: u64,
    /// How long events wait for more before their object is written (this sink's
    /// `batch.timeout`; they wait in the durable outbox). 0: an object per write at once.
    #[serde(default, with = "duration")]
    pub max_age: Duration,
    /// Each request.
    #[serde(default = "http::default_timeout", with = "duration")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

fn default_max_bytes() -> u64 {
    64 << 20
}

fn template_de<'de, D: Deserializer<'de>>(d: D) -> Result<PathTemplate, D::Error> {
    PathTemplate::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn optional_template_de<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathTemplate>, D::Error> {
    template_de(d).map(Some)
}
