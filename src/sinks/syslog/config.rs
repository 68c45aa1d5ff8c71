//! `type: syslog` settings: what the config file holds, its checks, and the sink it builds.

use super::SyslogSink;
use super::message::Facility;
use crate::encode::Format;
use crate::settings::duration;
use crate::settings::tls::StreamTlsConfig;
use crate::sinks::{Sink, SinkContext, SinkSettings};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` of the receiver.
    pub address: String,
    #[serde(default)]
    pub transport: Transport,
    #[serde(default)]
    pub protocol: Protocol,
    /// TCP only; TLS always counts octets.
    #[serde(default)]
    pub framing: Framing,
    #[serde(default = "default_facility")]
    pub facility: Facility,
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME of every message; absent: this machine's name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The message body: `cef` (default), `leef`, `text`, or a JSON format (`event` = `json`,
    /// `ecs`, `idmefv2`, `raw`).
    #[serde(default = "default_format")]
    pub format: Format,
    /// Attribute separator of LEEF bodies (tab by default); another one is chosen for a record
    /// whose values contain it.
    #[serde(default = "default_leef_delimiter")]
    pub leef_delimiter: char,
    /// SD-ID of sluice's structured-data element (RFC 5424 wants `name@<private enterprise
    /// number>`).
    #[serde(default = "default_sd_id")]
    pub sd_id: String,
    /// UDP only: longer messages are cut to this many bytes (and counted). Default 2048 for RFC
    /// 5424, 1024 for RFC 3164.
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    #[serde(default)]
    pub tls: StreamTlsConfig,
    /// Connect and write timeout.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    #[default]
    Tcp,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Rfc5424,
    Rfc3164,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    #[default]
    OctetCounting,
    Newline,
}

fn default_facility() -> Facility {
    Facility::Local0
}
fn default_app_name() -> String {
    "sluice".into()
}
fn default_format() -> Format {
    Format::Cef
}
fn default_leef_delimiter() -> char {
    '\t'
}
fn default_sd_id() -> String {
    "sluice@32473".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl SinkSettings for SyslogConfig {
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(SyslogSink::new(self.clone(), ctx)?))
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
            _ => out.push(("address", format!("`{}` is not host:port", self.address))),
        }
        if self.transport == Transport::Tls && self.framing == Framing::Newline {
            out.push(("framing", "TLS transport always uses octet counting (RFC 5425)".into()));
        }
        if self.leef_delimiter == '=' || self.leef_delimiter == '\n' || self.leef_delimiter == '\r' {
            out.push(("leef_delimiter", "must not be `=` or a line break".into()));
        }
        if self.sd_id.is_empty() || super::message::sd_name(&self.sd_id) != self.sd_id {
            out.push(("sd_id", "1–32 printable ASCII characters without `=`, space, `]` or `\"`".into()));
        }
        if self.max_message_bytes.is_some_and(|m| m < 480) {
            out.push(("max_message_bytes", "must be at least 480 (what every receiver must accept)".into()));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            out.push(("tls.key_file", "cert_file and key_file go together".into()));
        }
        for (field, path) in
            [("tls.ca_file", &self.tls.ca_file), ("tls.cert_file", &self.tls.cert_file), ("tls.key_file", &self.tls.key_file)]
        {
            if let Some(p) = path
                && !p.is_file()
            {
                out.push((field, format!("{} does not exist", p.display())));
            }
        }
        out
    }
}

impl SyslogConfig {
    pub(super) fn max_udp_bytes(&self) -> usize {
        self.max_message_bytes.unwrap_or(match self.protocol {
            Protocol::Rfc5424 => 2048,
            Protocol::Rfc3164 => 1024,
        })
    }
}
