//! `api:` settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// `api:` in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Request bodies above this many bytes are refused with 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Serve HTTPS with this certificate chain and key (PEM).
    #[serde(default)]
    pub tls: Option<crate::settings::tls::TlsFiles>,
    /// Connections open at once; more are answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time a client has, from connecting (TLS handshake included), to send a complete request
    /// line and headers; on a kept-alive connection, from the first byte of the next request.
    #[serde(default = "default_header_timeout", with = "crate::settings::duration")]
    pub header_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed; so is one whose answer
    /// the client does not read for this long.
    #[serde(default = "default_idle_timeout", with = "crate::settings::duration")]
    pub idle_timeout: Duration,
    /// Time a client has to send a request's body, from the end of its headers (408 after).
    #[serde(default = "default_body_timeout", with = "crate::settings::duration")]
    pub body_timeout: Duration,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_body() -> usize {
    10 << 20
}
fn default_max_connections() -> usize {
    1024
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(60)
}

impl ApiConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(tls) = &self.tls {
            for (field, path) in [("tls.cert_file", &tls.cert_file), ("tls.key_file", &tls.key_file)] {
                if !path.is_file() {
                    out.push((field, format!("{} does not exist", path.display())));
                }
            }
        }
        if self.max_body_bytes < 1024 {
            out.push(("max_body_bytes", "must be at least 1024".into()));
        }
        if self.max_connections == 0 {
            out.push(("max_connections", "must be at least 1".into()));
        }
        for (field, value) in
            [("header_timeout", self.header_timeout), ("idle_timeout", self.idle_timeout), ("body_timeout", self.body_timeout)]
        {
            if value < Duration::from_millis(100) {
                out.push((field, "must be at least 100ms".into()));
            }
        }
        out
    }

    /// The limits of the API's listener.
    pub fn limits(&self) -> super::server::Limits {
        super::server::Limits {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
        }
    }
}
