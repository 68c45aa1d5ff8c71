//! `type: mongodb` settings.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::settings::template::PathTemplate;
use crate::settings::{Secret, duration};
use crate::sinks::http;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// `mongodb://user:password@host:27017/?tls=true` or `mongodb+srv://…`. A secret: it
    /// holds the password.
    pub url: Secret,
    pub database: String,
    /// Collection name: `%TAG %TENANCY %YYYY %MM %DD %hh`. Default `%TAG`.
    #[serde(default = "default_collection", deserialize_with = "collection_de")]
    pub collection: PathTemplate,
    /// Connecting, and each operation.
    #[serde(default = "http::default_timeout", with = "duration")]
    pub timeout: Duration,
}

fn default_collection() -> PathTemplate {
    PathTemplate::parse("%TAG").expect("a valid template")
}

fn collection_de<'de, D: Deserializer<'de>>(d: D) -> Result<PathTemplate, D::Error> {
    let text = String::deserialize(d)?;
    if text.contains("%UUID") {
        return Err(serde::de::Error::custom("%UUID is not allowed in a collection name"));
    }
    PathTemplate::parse(&text).map_err(serde::de::Error::custom)
}
