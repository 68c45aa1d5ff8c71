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

/// The strings of an array at a path (other items skipped); empty when absent.
pub fn strings_at(v: &Value, path: &str) -> Vec<String> {
    at(v, path)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// A MITRE ATT&CK technique or sub-technique id: `T1059`, `T1564.001` (not a vendor's own `CST0001`).
pub fn is_attack_technique(id: &str) -> bool {
    let Some(rest) = id.strip_prefix('T') else { return false };
    let (main, sub) = rest.split_once('.').map_or((rest, None), |(m, s)| (m, Some(s)));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(main) && sub.is_none_or(digits)
}

/// A MITRE ATT&CK tactic id: `TA0002` (not a vendor's own `CSTA0004`).
pub fn is_attack_tactic(id: &str) -> bool {
    id.strip_prefix("TA").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A hash written as hex, lower-cased; anything else (empty, `N/A`) is dropped.
pub fn hex_hash(h: &str) -> Option<String> {
    let h = h.trim();
    (h.len() >= 16 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_ids_are_told_from_vendor_ids() {
        assert!(is_attack_technique("T1059") && is_attack_technique("T1564.001"));
        assert!(
            !is_attack_technique("CST0000")
                && !is_attack_technique("T")
                && !is_attack_technique("T1059.")
                && !is_attack_technique("TA0002")
        );
        assert!(is_attack_tactic("TA0002") && !is_attack_tactic("CSTA0004") && !is_attack_tactic("TA"));
    }
}
