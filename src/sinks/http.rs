//! What the HTTP sinks share: `Retry-After`, default timeouts and concurrency, URL checks, and a
//! bounded error text for logs and dead letters. The client itself is built by
//! [`crate::settings::tls::http_client`].

use std::time::Duration;

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
