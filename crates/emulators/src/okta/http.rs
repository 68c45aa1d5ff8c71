//! The emulator's state and endpoints: orgs by token, users paging, System Log polling and
//! bounded queries, Okta's error bodies and rate-limit headers.

use std::collections::HashMap;

use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::Options;
use super::records::Users;
use crate::vendor::{Admission, Api, Fault, Limiter, Reply, Request, hash};

const USERS: &str = "/api/v1/users";
const LOGS: &str = "/api/v1/logs";

struct Event {
    persisted: DateTime<Utc>,
    published: DateTime<Utc>,
    /// The event as JSON text.
    json: String,
}

pub struct Org {
    pub users: u64,
    pub deprovisioned: u64,
    tag: u64,
    /// In persistence order.
    events: Vec<Event>,
}

pub struct State {
    /// The org URL that `Link` headers point to.
    pub base: String,
    orgs: HashMap<String, Org>,
    users_limiter: Limiter,
    logs_limiter: Limiter,
    admission: Option<Admission>,
}

impl State {
    pub fn new(options: Options) -> State {
        State {
            base: String::new(),
            orgs: HashMap::new(),
            users_limiter: Limiter::new(options.users_rate_limit, options.enforce_rate_limits),
            logs_limiter: Limiter::new(options.logs_rate_limit, options.enforce_rate_limits),
            admission: None,
        }
    }

    pub fn org(&mut self, token: &str) -> &mut Org {
        self.orgs.entry(token.to_string()).or_insert_with(|| Org { users: 0, deprovisioned: 0, tag: hash(token), events: Vec::new() })
    }

    pub fn add_log_events(&mut self, token: &str, events: Vec<Value>) {
        let now = Utc::now();
        let org = self.org(token);
        for event in events {
            assert!(event.get("uuid").is_some_and(Value::is_string), "System Log events need a uuid");
            let published = event.get("published").and_then(Value::as_str).and_then(|p| DateTime::parse_from_rfc3339(p).ok());
            let published = published.expect("System Log events need an RFC 3339 published").to_utc();
            org.events.push(Event { persisted: now, published, json: event.to_string() });
        }
    }
}

fn token(req: &Request) -> Option<&str> {
    req.header(AUTHORIZATION.as_str())?.strip_prefix("SSWS ").map(str::trim)
}

/// Okta's error body; `errorId` is unique per answer.
fn error(status: u16, code: &str, summary: &str) -> Reply {
    let id = format!("oae{}", &uuid::Uuid::new_v4().simple().to_string()[..19]);
    Reply::json(status, &json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": id, "errorCauses": []}))
}

fn bad_request(summary: &str) -> Reply {
    error(400, "E0000001", &format!("Api validation failed: {summary}"))
}

fn throttled() -> Reply {
    error(429, "E0000047", "API call exceeded rate limit due to too many requests.")
}

/// A query string of `params`, percent-encoded.
fn query(params: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        out.append_pair(k, v);
    }
    out.finish()
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        token(req).map(str::to_string)
    }

    fn answer(&mut self, req: &Request, credential: Option<&str>) -> Reply {
        let Some(token) = credential.filter(|t| self.orgs.contains_key(*t)) else {
            return error(401, "E0000011", "Invalid token provided");
        };
        let limiter = if req.path == LOGS { &mut self.logs_limiter } else { &mut self.users_limiter };
        let admission = limiter.admit(token);
        let allowed = admission.allowed;
        self.admission = Some(admission);
        if !allowed {
            return throttled();
        }
        let org = &self.orgs[token];
        let result = match (req.path.as_str(), req.method == Method::GET) {
            (USERS, true) => users(req, org, &self.base),
            (LOGS, true) => logs(req, org, &self.base),
            _ => Err(error(404, "E0000022", "The endpoint does not support the provided HTTP method")),
        };
        result.unwrap_or_else(|reply| reply)
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(secs) => {
                let reset_in = std::time::Duration::from_secs(secs.unwrap_or(60));
                let limit = self.users_limiter.limit;
                self.admission = Some(Admission { allowed: false, limit, remaining: 0, reset_in });
                throttled()
            }
            Fault::Status(status) => error(status, "E0000009", "Internal Server Error"),
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }

    fn finish(&mut self, credential: Option<&str>, reply: &mut Reply) {
        let admission = self.admission.take().unwrap_or_else(|| self.users_limiter.peek(credential.unwrap_or_default()));
        reply.set("x-rate-limit-limit", admission.limit);
        reply.set("x-rate-limit-remaining", admission.remaining);
        reply.set("x-rate-limit-reset", admission.reset_epoch());
        reply.set("date", Utc::now().format("%a, %d %b %Y %H:%M:%S GMT"));
        reply.set("x-okta-request-id", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    }
}

fn link(base: &str, path: &str, params: &[(&str, &str)], rel: &str) -> String {
    format!(r#"<{base}{path}?{}>; rel="{rel}""#, query(params))
}

/// `listUsers`: `limit` (default and most 200), `after` = the last user's id, `filter` on
/// `status eq "…"` only.
fn users(req: &Request, org: &Org, base: &str) -> Result<Reply, Reply> {
    let limit = match req.param("limit") {
        None => 200,
        Some(text) => text.parse::<u64>().map_err(|_| bad_request("limit: must be a number"))?.clamp(1, 200),
    };
    let wanted = match req.param("filter") {
        None => None,
        Some(filter) => {
            let status = filter.strip_prefix("status eq \"").and_then(|s| s.strip_suffix('"'));
            Some(status.ok_or_else(|| error(400, "E0000031", "Invalid search criteria."))?.to_string())
        }
    };
    let users = Users { tag: org.tag, count: org.users, deprovisioned: org.deprovisioned };
    let start = match req.param("after") {
        Some(after) => users.index(after).ok_or_else(|| bad_request("after: invalid cursor"))? + 1,
        None => 0,
    };
    let listed = |i: &u64| match &wanted {
        Some(status) => users.status(*i) == status,
        None => users.status(*i) != "DEPROVISIONED",
    };
    let mut page = (start..users.total()).filter(listed).take(limit as usize + 1);
    let shown: Vec<u64> = page.by_ref().take(limit as usize).collect();
    let more = page.next().is_some();
    let mut out = String::with_capacity(shown.len() * 1100 + 2);
    out.push('[');
    for (n, &i) in shown.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        users.render(&mut out, base, i);
    }
    out.push(']');
    let limit = limit.to_string();
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let Some(filter) = req.param("filter") {
        params.push(("filter", filter));
    }
    params.push(("limit", &limit));
    let mut self_params = params.clone();
    if let Some(after) = req.param("after") {
        self_params.insert(0, ("after", after));
    }
    let mut reply = Reply::raw(200, "application/json", out).header("link", link(base, USERS, &self_params, "self"));
    if let (true, Some(&last)) = (more, shown.last()) {
        let last = users.id(last);
        params.insert(0, ("after", &last));
        reply.set("link", link(base, USERS, &params, "next"));
    }
    Ok(reply)
}

fn instant(req: &Request, name: &str) -> Result<Option<DateTime<Utc>>, Reply> {
    req.param(name)
        .map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.to_utc()).map_err(|_| bad_request(&format!("{name}: invalid date"))))
        .transpose()
}

/// An `after` cursor: a position in the polling order (`p`) or in a bounded query's result (`b`).
fn cursor(kind: char, position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}{position}"))
}

fn position(token: &str, kind: char) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    text.strip_prefix(kind)?.parse().ok()
}

/// The System Log. Polling (no `until`, ascending): events in persistence order from `since`
/// (default seven days ago) or the cursor, and always a `next` link. Bounded: events with
/// `published` in [`since`, `until`), in `published` order, `next` only while more remain.
fn logs(req: &Request, org: &Org, base: &str) -> Result<Reply, Reply> {
    let limit: usize = match req.param("limit") {
        None => 100,
        Some(text) => text.parse().ok().filter(|n| *n <= 1000).ok_or_else(|| bad_request("limit: must be between 0 and 1000"))?,
    };
    let descending = match req.param("sortOrder").unwrap_or("ASCENDING") {
        "ASCENDING" => false,
        "DESCENDING" => true,
        _ => return Err(bad_request("sortOrder: must be ASCENDING or DESCENDING")),
    };
    let (since, until) = (instant(req, "since")?, instant(req, "until")?);
    let now = Utc::now();
    if since.is_some_and(|s| s < now - TimeDelta::days(180)) {
        return Err(error(400, "E0000053", "Invalid parameter: The since parameter is over 180 days prior to the current day."));
    }
    let polling = until.is_none() && !descending;
    let kind = if polling { 'p' } else { 'b' };
    let start = match req.param("after") {
        Some(after) => Some(position(after, kind).ok_or_else(|| bad_request("after: invalid cursor"))?),
        None => None,
    };
    let since = since.unwrap_or(until.unwrap_or(now) - TimeDelta::days(7));
    let (selected, start): (Vec<&Event>, usize) = if polling {
        let start = start.unwrap_or_else(|| org.events.partition_point(|e| e.persisted < since));
        (org.events.iter().collect(), start.min(org.events.len()))
    } else {
        let until = until.unwrap_or(now);
        let mut selected: Vec<&Event> = org.events.iter().filter(|e| e.published >= since && e.published < until).collect();
        selected.sort_by_key(|e| e.published);
        if descending {
            selected.reverse();
        }
        let start = start.unwrap_or(0).min(selected.len());
        (selected, start)
    };
    let end = (start + limit).min(selected.len());
    let body = format!("[{}]", selected[start..end].iter().map(|e| e.json.as_str()).collect::<Vec<_>>().join(","));
    let self_query = req.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>();
    let mut reply = Reply::raw(200, "application/json", body).header("link", link(base, LOGS, &self_query, "self"));
    if polling || end < selected.len() {
        let next = cursor(kind, end);
        let mut params: Vec<(&str, &str)> = self_query.into_iter().filter(|(k, _)| *k != "after" && !(polling && *k == "since")).collect();
        params.push(("after", &next));
        reply.set("link", link(base, LOGS, &params, "next"));
    }
    Ok(reply)
}
