//! The security-events and organizations queries: parameter parsing and validation, filters,
//! ordering, and keyset anchors. Errors are the message of a 400 answer.

use std::collections::HashMap;
use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::state::{Org, Stored};

/// The engines of each `engineGroup`. Matching ignores case: the API emits `"amsi"` although
/// the documentation spells `AMSI`.
const ENGINE_GROUPS: &[(&str, &[&str])] = &[
    (
        "epp",
        &[
            "amsi",
            "activityMonitor",
            "activityMonitorClientProtection",
            "applicationControl",
            "browsingProtection",
            "connectionControl",
            "connector",
            "dataGuard",
            "deepGuard",
            "deviceControl",
            "fileScanning",
            "firewall",
            "integrityChecker",
            "manualScanning",
            "product",
            "realtimeScanning",
            "reputationBasedBrowsing",
            "setting",
            "systemEventsLog",
            "tamperProtection",
            "webContentControl",
            "webTrafficScanning",
            "xFence",
        ],
    ),
    ("edr", &["edr"]),
    (
        "ecp",
        &[
            "emailScan",
            "inboxRuleScan",
            "oneDriveScan",
            "sharePointScan",
            "teamsScan",
            "emailBreach",
            "cloudIdentityAzure",
            "cloudWorkloadAzure",
        ],
    ),
    ("xm", &["xmRecommendation"]),
];

pub const MAX_LIMIT: usize = 200;
/// The widest `persistenceTimestampStart`..`persistenceTimestampEnd` range the API accepts.
const MAX_RANGE_DAYS: i64 = 30;

/// Request parameters in arrival order (form body or query string).
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn first(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of a multi-valued parameter, sent as repeated keys (`engineGroup=epp&engineGroup=edr`)
    /// or comma-joined (`engineGroup=epp,edr`, as WithSecure's own Sentinel connector does).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).flat_map(|(_, v)| v.split(',')).map(str::trim).filter(|v| !v.is_empty()).collect()
    }

    fn limit(&self) -> Result<usize, String> {
        match self.first("limit") {
            None => Ok(MAX_LIMIT),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(format!("Invalid value of limit: {text}. Must be between 1 and {MAX_LIMIT}.")),
            },
        }
    }

    fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, String> {
        self.first(key)
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| format!("Invalid value of {key}: {text}. Expected an RFC 3339 date-time."))
            })
            .transpose()
    }
}

pub struct EventQuery {
    /// Lower-cased engine names.
    engines: Vec<String>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    exclusive_start: bool,
    ascending: bool,
    limit: usize,
    /// The keyset position of the previous page's last item.
    after: Option<(DateTime<Utc>, String)>,
    severities: Vec<String>,
}

impl EventQuery {
    pub fn parse(params: &Params) -> Result<EventQuery, String> {
        let mut engines = Vec::new();
        for engine in params.all("engine") {
            if !ENGINE_GROUPS.iter().flat_map(|(_, members)| members.iter()).any(|m| m.eq_ignore_ascii_case(engine)) {
                return Err(format!("Invalid value of engine: {engine}"));
            }
            engines.push(engine.to_lowercase());
        }
        for group in params.all("engineGroup") {
            let (_, members) = ENGINE_GROUPS
                .iter()
                .find(|(g, _)| g.eq_ignore_ascii_case(group))
                .ok_or_else(|| format!("Invalid value of engineGroup: {group}"))?;
            engines.extend(members.iter().map(|m| m.to_lowercase()));
        }
        if engines.is_empty() {
            return Err("Either engine or engineGroup is required.".into());
        }
        let start = params.time("persistenceTimestampStart")?;
        let end = params.time("persistenceTimestampEnd")?;
        match (start, end) {
            (None, None) => return Err("Either persistenceTimestampStart or persistenceTimestampEnd is required.".into()),
            (Some(s), Some(e)) if e < s => {
                return Err("persistenceTimestampEnd must not be before persistenceTimestampStart.".into());
            }
            (Some(s), Some(e)) if e - s > TimeDelta::days(MAX_RANGE_DAYS) => {
                return Err(format!("The persistenceTimestamp range must not exceed {MAX_RANGE_DAYS} days."));
            }
            _ => {}
        }
        let exclusive_start = match params.first("exclusiveStart") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => return Err(format!("Invalid value of exclusiveStart: {v}")),
        };
        let ascending = match params.first("order") {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(o) => return Err(format!("Invalid value of order: {o}. Must be asc or desc.")),
        };
        let after = params.first("anchor").map(|a| decode_event_anchor(a, ascending).ok_or("Invalid anchor.")).transpose()?;
        Ok(EventQuery {
            engines,
            start,
            end,
            exclusive_start,
            ascending,
            limit: params.limit()?,
            after,
            severities: params.all("severity").into_iter().map(str::to_string).collect(),
        })
    }

    fn admits(&self, e: &Stored) -> bool {
        self.engines.contains(&e.engine) && (self.severities.is_empty() || self.severities.contains(&e.severity))
    }

    /// The part of the sorted log inside the time range and past the anchor, found by binary
    /// search so deep pages of big logs stay cheap.
    fn bounds(&self, events: &[Stored]) -> Range<usize> {
        let mut lo = match self.start {
            Some(s) if self.exclusive_start => events.partition_point(|e| e.ts <= s),
            Some(s) => events.partition_point(|e| e.ts < s),
            None => 0,
        };
        let mut hi = self.end.map_or(events.len(), |end| events.partition_point(|e| e.ts <= end));
        if let Some((ts, id)) = &self.after {
            let anchor = (*ts, id.as_str());
            if self.ascending {
                lo = lo.max(events.partition_point(|e| e.key() <= anchor));
            } else {
                hi = hi.min(events.partition_point(|e| e.key() < anchor));
            }
        }
        lo..hi.max(lo)
    }

    /// One page: `{"items": [...], "nextAnchor": ...}`, `nextAnchor` only when more items match.
    pub fn page(&self, events: &[Stored]) -> Value {
        let range = &events[self.bounds(events)];
        let ordered: Box<dyn Iterator<Item = &Stored>> = if self.ascending { Box::new(range.iter()) } else { Box::new(range.iter().rev()) };
        let mut matching = ordered.filter(|e| self.admits(e));
        let page: Vec<&Stored> = matching.by_ref().take(self.limit).collect();
        let mut body = json!({ "items": page.iter().map(|e| &e.value).collect::<Vec<_>>() });
        if let Some(last) = page.last().filter(|_| matching.next().is_some()) {
            body["nextAnchor"] = json!(encode_event_anchor(last.ts, &last.id, self.ascending));
        }
        body
    }

    /// Counts of the matching events per value of `property` (the `count` parameter, with
    /// `Accept: application/vnd.withsecure.aggr+json`): `{"items": [{"engine": "deepGuard", "count": 12}]}`.
    pub fn aggregate(&self, events: &[Stored], property: &str) -> Value {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for e in events[self.bounds(events)].iter().filter(|e| self.admits(e)) {
            let value = match property {
                "deviceId" => e.value.pointer("/device/id"),
                _ => e.value.get(property).or_else(|| e.value.get("details").and_then(|d| d.get(property))),
            };
            if let Some(v) = value.and_then(Value::as_str) {
                *counts.entry(v.to_string()).or_default() += 1;
            }
        }
        let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let items: Vec<Value> = counts.into_iter().map(|(v, n)| json!({ property: v, "count": n })).collect();
        json!({ "items": items })
    }
}

/// Opaque to clients; carries the last item's sort key and the order it was sorted in, so paging
/// stays exact when events arrive between pages and an anchor cannot be replayed in the other order.
fn encode_event_anchor(ts: DateTime<Utc>, id: &str, ascending: bool) -> String {
    let raw = json!({"t": ts.to_rfc3339(), "i": id, "o": order_name(ascending)});
    URL_SAFE_NO_PAD.encode(raw.to_string())
}

fn decode_event_anchor(anchor: &str, ascending: bool) -> Option<(DateTime<Utc>, String)> {
    let raw: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(anchor).ok()?).ok()?;
    if raw["o"] != order_name(ascending) {
        return None;
    }
    let ts = DateTime::parse_from_rfc3339(raw["t"].as_str()?).ok()?.with_timezone(&Utc);
    Some((ts, raw["i"].as_str()?.to_string()))
}

fn order_name(ascending: bool) -> &'static str {
    if ascending { "asc" } else { "desc" }
}

pub struct OrgQuery {
    pub id: Option<String>,
    kind: Option<String>,
    limit: usize,
    /// The last id of the previous page: organizations are listed by id.
    after: Option<String>,
}

impl OrgQuery {
    pub fn parse(params: &Params) -> Result<OrgQuery, String> {
        let kind = match params.first("type") {
            None => None,
            Some(k @ ("company" | "partner")) => Some(k.to_string()),
            Some(k) => return Err(format!("Invalid value of type: {k}. Must be company or partner.")),
        };
        let after = params.first("anchor").map(|a| decode_org_anchor(a).ok_or("Invalid anchor.")).transpose()?;
        Ok(OrgQuery { id: params.first("organizationId").map(str::to_string), kind, limit: params.limit()?, after })
    }

    /// One page of `orgs`, which come sorted by id.
    pub fn page<'a>(&self, orgs: impl Iterator<Item = (&'a str, &'a Org)>) -> Value {
        let mut matching = orgs.filter(|(id, org)| {
            self.after.as_deref().is_none_or(|a| *id > a)
                && self.id.as_deref().is_none_or(|wanted| wanted == *id)
                && self.kind.as_deref().is_none_or(|k| k == org.kind)
        });
        let page: Vec<(&str, &Org)> = matching.by_ref().take(self.limit).collect();
        let items: Vec<Value> = page.iter().map(|(id, o)| json!({"id": id, "name": o.name, "type": o.kind})).collect();
        let mut body = json!({ "items": items });
        if let Some((last, _)) = page.last().filter(|_| matching.next().is_some()) {
            body["nextAnchor"] = json!(URL_SAFE_NO_PAD.encode(json!({ "org": last }).to_string()));
        }
        body
    }
}

fn decode_org_anchor(anchor: &str) -> Option<String> {
    let raw: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(anchor).ok()?).ok()?;
    Some(raw["org"].as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn multi_valued_parameters_may_be_repeated_or_comma_joined() {
        let p = params(&[("engineGroup", "epp, edr"), ("engineGroup", "ecp"), ("limit", "5")]);
        assert_eq!(p.all("engineGroup"), ["epp", "edr", "ecp"]);
        assert_eq!(p.first("limit"), Some("5"));
    }

    #[test]
    fn event_anchors_round_trip_and_are_tied_to_their_order() {
        let ts = DateTime::parse_from_rfc3339("2024-01-01T00:00:00.123456789Z").unwrap().with_timezone(&Utc);
        let a = encode_event_anchor(ts, "x_1", true);
        assert_eq!(decode_event_anchor(&a, true), Some((ts, "x_1".to_string())));
        assert_eq!(decode_event_anchor(&a, false), None);
        assert_eq!(decode_event_anchor("not an anchor", true), None);
    }

    #[test]
    fn validation() {
        let base = [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
        let with = |extra: &[(&str, &str)]| {
            let mut p = base.to_vec();
            p.extend_from_slice(extra);
            EventQuery::parse(&params(&p)).map(|_| ())
        };
        assert!(with(&[]).is_ok());
        assert!(with(&[("engine", "AMSI"), ("engineGroup", "EDR")]).is_ok());
        assert!(with(&[("engine", "nope")]).is_err());
        assert!(with(&[("engineGroup", "nope")]).is_err());
        assert!(with(&[("limit", "0")]).is_err());
        assert!(with(&[("limit", "201")]).is_err());
        assert!(with(&[("limit", "200")]).is_ok());
        assert!(with(&[("order", "ascending")]).is_err());
        assert!(with(&[("exclusiveStart", "yes")]).is_err());
        assert!(with(&[("persistenceTimestampEnd", "2023-12-31T00:00:00Z")]).is_err());
        assert!(with(&[("persistenceTimestampEnd", "2024-03-01T00:00:00Z")]).is_err());
        assert!(with(&[("persistenceTimestampEnd", "2024-01-31T00:00:00+02:00")]).is_ok());
        assert!(EventQuery::parse(&params(&[("engineGroup", "epp")])).is_err());
        assert!(EventQuery::parse(&params(&[("persistenceTimestampStart", "2024-01-01T00:00:00Z")])).is_err());
        assert!(EventQuery::parse(&params(&[("engine", "edr"), ("persistenceTimestampEnd", "2024-01-01")])).is_err());
    }
}
