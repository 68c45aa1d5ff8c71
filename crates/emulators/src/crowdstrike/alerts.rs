//! The part of FQL (Falcon Query Language) the alerts endpoints need: `+`-joined terms
//! `field:'value'`, `field:>'value'` (also `>=`, `<`, `<=`, `!`), `field:['a','b']`, on dotted
//! fields, with timestamps compared as instants; and `field|asc` / `field.desc` sorting.

use std::cmp::Ordering;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

struct Term {
    path: Vec<String>,
    op: Op,
    /// Any of these (one unless the value was a `[…]` list).
    values: Vec<String>,
}

pub struct Filter(Vec<Term>);

/// Splits on `sep` outside single or double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c == sep => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

impl Filter {
    /// An empty filter matches everything.
    pub fn parse(fql: &str) -> Result<Filter, String> {
        let mut terms = Vec::new();
        for term in split_unquoted(fql, '+').into_iter().map(str::trim).filter(|t| !t.is_empty()) {
            let (field, rest) = term.split_once(':').ok_or_else(|| format!("invalid filter term: {term}"))?;
            let (op, value) = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt), ("!", Op::Ne)]
                .into_iter()
                .find_map(|(p, op)| rest.strip_prefix(p).map(|v| (op, v)))
                .unwrap_or((Op::Eq, rest));
            let values = match value.trim().strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                Some(list) => split_unquoted(list, ',').into_iter().map(|v| unquote(v).to_string()).collect(),
                None => vec![unquote(value).to_string()],
            };
            let path = field.trim().split('.').map(str::to_string).collect();
            terms.push(Term { path, op, values });
        }
        Ok(Filter(terms))
    }

    pub fn matches(&self, alert: &Value) -> bool {
        self.0.iter().all(|term| {
            let field = term.path.iter().try_fold(alert, |v, key| v.get(key));
            let Some(field) = field.filter(|v| !v.is_null()) else { return term.op == Op::Ne };
            let any = term.values.iter().any(|value| {
                let ord = compare(field, value);
                match term.op {
                    Op::Eq | Op::Ne => ord == Some(Ordering::Equal),
                    Op::Gt => ord == Some(Ordering::Greater),
                    Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                    Op::Lt => ord == Some(Ordering::Less),
                    Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                }
            });
            if term.op == Op::Ne { !any } else { any }
        })
    }
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// A field against a filter value: as instants when both are timestamps, as numbers when the
/// field is one, else as strings (case-insensitively, as FQL matches text).
fn compare(field: &Value, value: &str) -> Option<Ordering> {
    match field {
        Value::String(s) => match (instant(s), instant(value)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(s.to_lowercase().cmp(&value.to_lowercase())),
        },
        Value::Number(n) => n.as_f64()?.partial_cmp(&value.parse::<f64>().ok()?),
        Value::Bool(b) => Some(b.to_string().cmp(&value.to_lowercase())),
        _ => None,
    }
}

/// Orders by `field|asc` / `field|desc` (or `field.asc`), then by `composite_id` so that equal
/// keys page in a stable order.
pub fn sort(alerts: &mut [&Value], spec: &str) -> Result<(), String> {
    let (field, dir) = spec.rsplit_once('|').or_else(|| spec.rsplit_once('.')).unwrap_or((spec, "asc"));
    let desc = match dir {
        "asc" => false,
        "desc" => true,
        _ => return Err(format!("invalid sort: {spec}")),
    };
    let key = |a: &Value| {
        let v = a.get(field).cloned().unwrap_or(Value::Null);
        let id = a.get("composite_id").and_then(Value::as_str).unwrap_or_default().to_string();
        (v, id)
    };
    alerts.sort_by(|a, b| {
        let ((va, ia), (vb, ib)) = (key(a), key(b));
        let ord = match (&va, &vb) {
            (Value::String(x), Value::String(y)) => match (instant(x), instant(y)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => x.cmp(y),
            },
            (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        };
        let ord = ord.then(ia.cmp(&ib));
        if desc { ord.reverse() } else { ord }
    });
    Ok(())
}

/// A realistic endpoint alert (shape of the Alerts API's `epp` alerts) numbered `n` in `cid`,
/// created and last updated at `at`.
pub fn sample_alert(cid: &str, n: u64, at: DateTime<Utc>) -> Value {
    let aid = format!("{:032x}", crate::vendor::mix(n ^ crate::vendor::hash(cid)));
    let id = format!("ind:{aid}:{}-5761-{}", 399_748_687_993 + n, 42_627_600 + n);
    let stamp = at.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let level = (n % 5) as usize;
    let (severity, severity_name) = ([10, 30, 50, 70, 90][level], ["Informational", "Low", "Medium", "High", "Critical"][level]);
    json!({
        "agent_id": aid,
        "aggregate_id": format!("aggind:{aid}:{}", 163_208_931_778 + n),
        "cid": cid,
        "composite_id": format!("{cid}:{id}"),
        "id": id,
        "confidence": 10 + n % 90,
        "severity": severity,
        "severity_name": severity_name,
        "status": "new",
        "type": "ldt",
        "product": "epp",
        "platform": "Windows",
        "name": "PrewittPupAdwareSensorDetect-Lowest",
        "description": "This file meets the Adware/PUP Anti-malware ML algorithm's lowest-confidence threshold.",
        "tactic": "Machine Learning",
        "tactic_id": "CSTA0004",
        "technique": "Adware/PUP",
        "technique_id": "CST0000",
        "pattern_id": 5761,
        "scenario": "NGAV",
        "objective": "Falcon Detection Method",
        "created_timestamp": stamp,
        "updated_timestamp": stamp,
        "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "device": {"device_id": aid, "hostname": format!("host-{n:06}"), "platform_name": "Windows", "os_version": "Windows 11", "agent_version": "7.04.17605.0"},
        "filename": "openvpn-install.exe",
        "filepath": "\\Device\\HarddiskVolume3\\Users\\u\\AppData\\Local\\Temp\\openvpn-install.exe",
        "sha256": format!("{:016x}{:016x}{:016x}{:016x}", n, n + 1, n + 2, n + 3),
        "user_name": format!("user{n}"),
        "pattern_disposition": 2176,
        "show_in_ui": true,
        "source_products": ["Falcon Insight"],
        "source_vendors": ["CrowdStrike"],
        "data_domains": ["Endpoint"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_on_timestamps_and_strings() {
        let a = json!({"updated_timestamp": "2024-05-01T10:00:00.5Z", "product": "epp", "severity": 70, "device": {"hostname": "h1"}});
        let yes = |f: &str| Filter::parse(f).unwrap().matches(&a);
        assert!(yes("updated_timestamp:>'2024-05-01T10:00:00Z'"));
        assert!(!yes("updated_timestamp:>'2024-05-01T10:00:00.5Z'"));
        assert!(yes("updated_timestamp:>='2024-05-01T10:00:00.500Z'+product:'epp'"));
        assert!(!yes("product:'xdr'"));
        assert!(yes("product:['xdr','EPP']"));
        assert!(yes("severity:>50+device.hostname:'h1'"));
        assert!(yes("product:!'xdr'"));
        assert!(yes(""));
    }
}
