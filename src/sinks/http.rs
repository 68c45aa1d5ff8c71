//! What the HTTP sinks share: `Retry-After`, default timeouts and concurrency, the URL taken
//! apart from the credentials it may hold, request errors as text without them, and a bounded
//! error text for logs and dead letters. The client itself is built by
//! [`crate::settings::tls::http_client`].

use std::time::Duration;

use anyhow::anyhow;

use crate::settings::{Secret, redact_urls};

/// A sink's configured URL taken apart: the URL without its userinfo, which requests go to and
/// messages may show, and the credentials the userinfo held (`https://user:password@host/`),
/// which the sink sends as HTTP Basic.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub url: String,
    pub basic: Option<(String, Option<Secret>)>,
}

impl Endpoint {
    pub fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let mut parsed = reqwest::Url::parse(url).map_err(|e| anyhow!("not a URL: {e}"))?;
        let (user, password) = (percent_decode(parsed.username()), parsed.password().map(percent_decode));
        let basic = (!user.is_empty() || password.is_some()).then(|| (user, password.map(Secret::new)));
        if basic.is_some() {
            // Cannot fail: a URL with credentials has a host.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        Ok(Endpoint { url: parsed.to_string(), basic })
    }

    /// Whether `url` carries credentials (for the settings' checks).
    pub fn has_credentials(url: &str) -> bool {
        Endpoint::parse(url).is_ok_and(|e| e.basic.is_some())
    }

    /// The request with the URL's credentials as HTTP Basic, if it held any.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.basic {
            Some((user, password)) => request.basic_auth(user, password.as_ref().map(Secret::expose)),
            None => request,
        }
    }
}

/// `%XX` escapes of a URL's userinfo back to bytes (invalid UTF-8 replaced; a `%` not followed
/// by two hex digits stays as it is).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// A request error as text: the error and its causes (`Connection refused` is in a cause), any
/// URL in it without credentials.
pub fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    redact_urls(&text)
}

/// Whether no connection could be made at all (refused, no route, name not resolved, connect
/// timeout, TLS handshake): the destination is down or unreachable, and trying the other
/// requests of the write, or this one again at once, would only delay the outbox.
pub fn is_unreachable(error: &reqwest::Error) -> bool {
    error.is_connect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        let e = Endpoint::parse("https://elastic:p%40ss%3Aw0rd@es.example.org:9200/prefix").unwrap();
        assert_eq!(e.url, "https://es.example.org:9200/prefix");
        let (user, password) = e.basic.unwrap();
        assert_eq!((user.as_str(), password.unwrap().expose()), ("elastic", "p@ss:w0rd"));
        let e = Endpoint::parse("http://token@h").unwrap();
        assert_eq!((e.url.as_str(), e.basic.map(|(u, p)| (u, p.is_none()))), ("http://h/", Some(("token".to_string(), true))));
        assert_eq!(Endpoint::parse("http://h:8088").unwrap(), Endpoint { url: "http://h:8088/".into(), basic: None });
        assert!(Endpoint::has_credentials("http://u:p@h/") && !Endpoint::has_credentials("http://h/"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_and_its_text_names_the_cause_without_credentials() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = crate::settings::tls::http_client(&Default::default(), Duration::from_secs(5)).unwrap();
        let err = client.get(format!("http://u:hunter2@127.0.0.1:{port}/x")).send().await.unwrap_err();
        assert!(is_unreachable(&err));
        let text = error_text(&err);
        assert!(text.contains("refused") && !text.contains("hunter2"), "{text}");
    }

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
