//! What the HTTP sinks share: the client (rustls, certificate verification on unless turned
//! off, an extra CA allowed), `Retry-After`, and a bounded error text for logs and dead letters.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// `tls:` of an HTTP sink.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// A PEM file of CA certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. For test setups only: it turns off the protection TLS
    /// gives.
    pub insecure: bool,
}

impl TlsConfig {
    pub fn problems(&self, field: &'static str) -> Vec<(&'static str, String)> {
        match &self.ca_file {
            Some(path) if !path.is_file() => vec![(field, format!("ca_file {} does not exist", path.display()))],
            _ => Vec::new(),
        }
    }
}

/// A client for one sink: connection pooling, timeouts, the sink's TLS settings, gzip off
/// (sinks compress request bodies themselves).
pub fn client(tls: &TlsConfig, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(32)
        .danger_accept_invalid_certs(tls.insecure);
    if let Some(path) = &tls.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("parsing {}", path.display()))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the HTTP client")
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok().or(Some(Duration::ZERO))
}

/// Per-request timeout of the HTTP sinks, unless set.
pub fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Requests in flight per HTTP sink, unless set.
pub fn default_concurrency() -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(4).expect("4 is not 0")
}

/// At most 500 characters of a response body, for errors and dead-letter reasons.
pub fn excerpt(body: &str) -> String {
    let mut s: String = body.chars().take(500).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s
}

/// Checks a URL option: http or https.
pub fn url_problem(url: &str) -> Option<String> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => None,
        Ok(u) => Some(format!("scheme `{}` is not http or https", u.scheme())),
        Err(e) => Some(format!("not a URL: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30), "{wait:?}");
        h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}
