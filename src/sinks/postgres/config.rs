//! `type: postgres` settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::settings::template::PathTemplate;
use crate::settings::{Secret, duration};
use crate::sinks::http;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`. Kept as a secret: it holds the password.
    pub url: Secret,
    /// The schema the tables are in. Default `public`.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Table name: `%TAG` (source name), `%TENANCY`, `%YYYY %MM %DD %hh`. Default `%TAG`: one
    /// table per source, as the original collectors had one table per tag.
    #[serde(default = "default_table", deserialize_with = "table_de")]
    pub table: PathTemplate,
    /// `disable`, `require` (encrypted, the certificate chain verified) or `verify-full`
    /// (the chain and the host name verified).
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM CA certificates to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Connecting, and each transaction, must finish within this.
    #[serde(default = "http::default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Create the schema, tables and unique index when missing.
    #[serde(default = "default_true")]
    pub create_tables: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    #[default]
    Disable,
    Require,
    VerifyFull,
}

fn default_schema() -> String {
    "public".into()
}
fn default_table() -> PathTemplate {
    PathTemplate::parse("%TAG").expect("a valid template")
}
fn default_true() -> bool {
    true
}
fn table_de<'de, D: Deserializer<'de>>(d: D) -> Result<PathTemplate, D::Error> {
    let text = String::deserialize(d)?;
    if text.contains("%UUID") {
        return Err(serde::de::Error::custom("%UUID is not allowed in a table name"));
    }
    if text.contains('\0') {
        return Err(serde::de::Error::custom("a table name cannot hold NUL"));
    }
    PathTemplate::parse(&text).map_err(serde::de::Error::custom)
}
