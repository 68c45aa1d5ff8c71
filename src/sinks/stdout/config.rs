//! `type: stdout` settings.

use serde::Deserialize;

use crate::encode::Format;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// How each event is written; the normalized `event` unless set.
    #[serde(default = "default_format")]
    pub format: Format,
    /// `stdout`, or `stderr` to keep the events apart from another program's output.
    #[serde(default)]
    pub stream: Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    #[default]
    Stdout,
    Stderr,
}

fn default_format() -> Format {
    Format::Event
}
