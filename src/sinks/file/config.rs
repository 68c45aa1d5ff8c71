//! `type: file` settings: what the config file holds, its checks, and the sink it builds.

use super::FileSink;
use crate::encode::Format;
use crate::settings::template::PathTemplate;
use crate::sinks::{Sink, SinkContext, SinkSettings};
use serde::{Deserialize, Deserializer};
use std::num::NonZeroUsize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    #[serde(deserialize_with = "template_de")]
    pub path: PathTemplate,
    #[serde(default)]
    pub format: Format,
    /// Upper bound on files held open at once.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: NonZeroUsize,
}

fn default_max_open_files() -> NonZeroUsize {
    NonZeroUsize::new(256).unwrap()
}

fn template_de<'de, D: Deserializer<'de>>(d: D) -> Result<PathTemplate, D::Error> {
    PathTemplate::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

impl SinkSettings for FileSinkConfig {
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(FileSink::new(&ctx.name, self.clone())?))
    }
}
