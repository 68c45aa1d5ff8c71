//! Reading vendor JSON: values at dotted paths, the time formats vendors write, severity words.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use crate::model::Level;

/// The value at a dotted path (`alert.signature`).
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k)).filter(|v| !v.is_null())
}

/// A string at a path; numbers and booleans are given as text. Empty strings count as absent.
pub fn str_at(v: &Value, path: &str) -> Option<String> {
    match at(v, path)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn int_at(v: &Value, path: &str) -> Option<i64> {
    match at(v, path)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn ip_at(v: &Value, path: &str) -> Option<IpAddr> {
    str_at(v, path).and_then(|s| s.trim().parse().ok())
}

pub fn port_at(v: &Value, path: &str) -> Option<u16> {
    int_at(v, path).and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)
}

/// RFC 3339 and the variants vendors write: `+0000` offsets, a space instead of `T`, no offset
/// (taken as UTC), epoch seconds or milliseconds.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%a %b %d %H:%M:%S %Y"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d.and_utc());
        }
    }
    epoch(t.parse::<f64>().ok()?)
}

/// Epoch seconds, or milliseconds when the number is too large to be seconds.
pub fn epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let millis = if n > 1e12 { n } else { n * 1000.0 };
    DateTime::from_timestamp_millis(millis as i64)
}

pub fn level_from_word(word: &str) -> Option<Level> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "fatal" | "fatal_error" | "emergency" | "emerg" | "alert" | "disaster" => Level::Critical,
        "high" | "error" | "err" | "severe" | "major" => Level::High,
        "medium" | "warning" | "warn" | "average" | "moderate" => Level::Medium,
        "low" | "notice" | "minor" => Level::Low,
        "info" | "informational" | "information" | "debug" | "none" | "not_classified" => Level::Info,
        _ => return None,
    })
}
