//! Security-events and organizations queries: filters, ordering and keyset anchors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::Stored;

/// Engines of each `engineGroup`, lower-cased for matching.
const GROUPS: &[(&str, &[&str])] = &[
    ("epp", &[
        "amsi", "activitymonitor", "activitymonitorclientprotection", "applicationcontrol", "browsingprotection",
        "connectioncontrol", "connector", "dataguard", "deepguard", "devicecontrol", "filescanning", "firewall",
        "integritychecker", "manualscanning", "product", "realtimescanning", "reputationbasedbrowsing", "setting",
        "systemeventslog", "tamperprotection", "webcontentcontrol", "webtrafficscanning", "xfence",
    ]),
    ("edr", &["edr"]),
    ("ecp", &[
        "emailscan", "inboxrulescan", "onedrivescan", "sharepointscan", "teamsscan", "emailbreach",
        "cloudidentityazure", "cloudworkloadazure",
    ]),
    ("xm", &["xmrecommendation"]),
];

pub struct EventQuery {
    pub engines: Vec<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub exclusive_start: bool,
    pub ascending: bool,
    pub limit: usize,
    pub after: Option<(DateTime<Utc>, String)>,
    pub severities: Vec<String>,
}

/// All values of a parameter, whether repeated or comma-joined.
pub fn values(params: &[(String, String)], key: &str) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>())
        .collect()
}

pub fn first(params: &[(String, String)], key: &str) -> Option<String> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn parse_time(text: &str, name: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("Invalid value of {name}: {text}"))
}

pub fn parse_limit(params: &[(String, String)]) -> Result<usize, String> {
    match first(params, "limit") {
        None => Ok(200),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=200).contains(&n) => Ok(n),
            _ => Err(format!("Invalid value of limit: {l}. Must be between 1 and 200")),
        },
    }
}

impl EventQuery {
    pub fn parse(params: &[(String, String)]) -> Result<EventQuery, String> {
        let mut engines: Vec<String> = values(params, "engine").iter().map(|e| e.to_lowercase()).collect();
        for group in values(params, "engineGroup") {
            let members = GROUPS
                .iter()
                .find(|(g, _)| g.eq_ignore_ascii_case(&group))
                .ok_or_else(|| format!("Invalid value of engineGroup: {group}"))?
                .1;
            engines.extend(members.iter().map(|m| m.to_string()));
        }
        if engines.is_empty() {
            return Err("Either engine or engineGroup is required".into());
        }
        let start = first(params, "persistenceTimestampStart").map(|t| parse_time(&t, "persistenceTimestampStart")).transpose()?;
        let end = first(params, "persistenceTimestampEnd").map(|t| parse_time(&t, "persistenceTimestampEnd")).transpose()?;
        if start.is_none() && end.is_none() {
            return Err("persistenceTimestampStart or persistenceTimestampEnd is required".into());
        }
        let ascending = match first(params, "order").as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(o) => return Err(format!("Invalid value of order: {o}")),
        };
        let after = match first(params, "anchor") {
            None => None,
            Some(a) => Some(decode_anchor(&a, ascending).ok_or_else(|| "Invalid anchor".to_string())?),
        };
        Ok(EventQuery {
            engines,
            start,
            end,
            exclusive_start: first(params, "exclusiveStart").is_some_and(|v| v == "true"),
            ascending,
            limit: parse_limit(params)?,
            after,
            severities: values(params, "severity"),
        })
    }

    fn matches(&self, e: &Stored) -> bool {
        let engine = e.value.get("engine").and_then(Value::as_str).unwrap_or_default().to_lowercase();
        let severity = e.value.get("severity").and_then(Value::as_str).unwrap_or_default();
        self.engines.contains(&engine)
            && (self.severities.is_empty() || self.severities.iter().any(|s| s == severity))
            && match self.start {
                Some(s) if self.exclusive_start => e.ts > s,
                Some(s) => e.ts >= s,
                None => true,
            }
            && self.end.is_none_or(|end| e.ts <= end)
            && match &self.after {
                Some((t, id)) if self.ascending => (e.ts, &e.id) > (*t, id),
                Some((t, id)) => (e.ts, &e.id) < (*t, id),
                None => true,
            }
    }

    /// One page: `{"items": [...], "nextAnchor"?}`.
    pub fn page(&self, events: &[Stored]) -> Value {
        let mut matching: Box<dyn Iterator<Item = &Stored>> =
            if self.ascending { Box::new(events.iter()) } else { Box::new(events.iter().rev()) };
        let mut items = Vec::new();
        let mut last = None;
        let mut more = false;
        for e in matching.by_ref().filter(|e| self.matches(e)) {
            if items.len() == self.limit {
                more = true;
                break;
            }
            items.push(e.value.clone());
            last = Some(e);
        }
        let mut body = json!({ "items": items });
        if let (true, Some(last)) = (more, last) {
            body["nextAnchor"] = Value::String(encode_anchor(last.ts, &last.id, self.ascending));
        }
        body
    }
}

fn encode_anchor(ts: DateTime<Utc>, id: &str, ascending: bool) -> String {
    let raw = json!({"t": ts.to_rfc3339(), "i": id, "o": if ascending { "asc" } else { "desc" }}).to_string();
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_anchor(anchor: &str, ascending: bool) -> Option<(DateTime<Utc>, String)> {
    let raw: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(anchor).ok()?).ok()?;
    if raw["o"] != if ascending { "asc" } else { "desc" } {
        return None;
    }
    let ts = DateTime::parse_from_rfc3339(raw["t"].as_str()?).ok()?.with_timezone(&Utc);
    Some((ts, raw["i"].as_str()?.to_string()))
}

/// Organizations are paged by id; the anchor is the last id returned.
pub fn organizations_page(mut orgs: Vec<Value>, params: &[(String, String)]) -> Result<Value, String> {
    let limit = parse_limit(params)?;
    orgs.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let after = match first(params, "anchor") {
        Some(a) => Some(String::from_utf8(URL_SAFE_NO_PAD.decode(&a).map_err(|_| "Invalid anchor")?).map_err(|_| "Invalid anchor")?),
        None => None,
    };
    let kind = first(params, "type");
    let rest: Vec<Value> = orgs
        .into_iter()
        .filter(|o| after.as_deref().is_none_or(|a| o["id"].as_str().unwrap_or_default() > a))
        .filter(|o| kind.as_deref().is_none_or(|k| o["type"] == k))
        .collect();
    let more = rest.len() > limit;
    let items: Vec<Value> = rest.into_iter().take(limit).collect();
    let mut body = json!({ "items": items });
    if more {
        let last = items.last().and_then(|o| o["id"].as_str()).unwrap_or_default();
        body["nextAnchor"] = Value::String(URL_SAFE_NO_PAD.encode(last));
    }
    Ok(body)
}
