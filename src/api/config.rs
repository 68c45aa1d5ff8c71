//! `api:` settings.

use std::net::SocketAddr;

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
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_body() -> usize {
    10 << 20
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
        out
    }
}
