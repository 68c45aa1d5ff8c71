//! The emulator's state and endpoints: tokens, per-CID data, the `{meta, errors, resources}`
//! envelope and the rate-limit headers.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::Options;
use super::alerts::{self, Filter};
use super::records::{Facets, Tenant};
use crate::vendor::{Admission, Api, Fault, Limiter, Reply, Request, epoch_after};

/// Requests with a missing or invalid token: the API allows 15 a minute per source address.
const ANONYMOUS_LIMIT: u32 = 15;
const MAX_OFFSET: u64 = 10_000;

struct Client {
    secret: String,
    cid: String,
    members: BTreeSet<String>,
}

#[derive(Default)]
pub struct TenantData {
    pub hosts: u64,
    pub vulnerabilities: u64,
    alerts: Vec<Value>,
}

struct Token {
    client_id: String,
    cid: String,
    expires: Instant,
    generation: u64,
}

pub struct State {
    options: Options,
    clients: HashMap<String, Client>,
    tenants: HashMap<String, TenantData>,
    tokens: HashMap<String, Token>,
    generation: u64,
    limiter: Limiter,
    anonymous: Limiter,
    /// The rate-limit numbers of the request being answered, for its headers.
    admission: Option<Admission>,
}

impl State {
    pub fn new(options: Options) -> State {
        let limiter = Limiter::new(options.rate_limit_per_minute, true);
        State {
            options,
            clients: HashMap::new(),
            tenants: HashMap::new(),
            tokens: HashMap::new(),
            generation: 0,
            limiter,
            anonymous: Limiter::new(ANONYMOUS_LIMIT, true),
            admission: None,
        }
    }

    pub fn add_client(&mut self, id: &str, secret: &str, cid: &str) {
        self.clients.insert(id.to_string(), Client { secret: secret.to_string(), cid: cid.to_string(), members: BTreeSet::new() });
        self.tenant(cid);
    }

    pub fn add_member(&mut self, id: &str, member_cid: &str) {
        if let Some(client) = self.clients.get_mut(id) {
            client.members.insert(member_cid.to_string());
        }
        self.tenant(member_cid);
    }

    pub fn tenant(&mut self, cid: &str) -> &mut TenantData {
        self.tenants.entry(cid.to_string()).or_default()
    }

    pub fn add_alerts(&mut self, cid: &str, batch: Vec<Value>) {
        let stored = &mut self.tenant(cid).alerts;
        for alert in batch {
            let id = alert.get("composite_id").and_then(Value::as_str).expect("alerts need a composite_id").to_string();
            match stored.iter_mut().find(|a| a["composite_id"] == id.as_str()) {
                Some(old) => *old = alert,
                None => stored.push(alert),
            }
        }
    }

    pub fn update_alert(&mut self, cid: &str, composite_id: &str, changes: Value) -> bool {
        let Some(alert) = self.tenant(cid).alerts.iter_mut().find(|a| a["composite_id"] == composite_id) else { return false };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        alert["updated_timestamp"] = Value::String(now);
        if let (Some(alert), Value::Object(changes)) = (alert.as_object_mut(), changes) {
            alert.extend(changes);
        }
        true
    }

    pub fn expire_tokens(&mut self) {
        self.generation += 1;
    }

    /// The token's CID if it is valid now.
    fn bearer(&self, req: &Request) -> Option<&Token> {
        let token = req.header(AUTHORIZATION.as_str())?.strip_prefix("Bearer ")?.trim();
        self.tokens.get(token).filter(|t| t.expires > Instant::now() && t.generation == self.generation)
    }

    fn token(&mut self, req: &Request) -> Reply {
        let form: HashMap<String, String> = form_urlencoded::parse(&req.body).into_owned().collect();
        let (Some(id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) else {
            return self.anonymous_error(400, "client_id and client_secret are required");
        };
        let Some(client) = self.clients.get(id).filter(|c| &c.secret == secret) else {
            return self.anonymous_error(403, "access denied, authorization failed");
        };
        let cid = match form.get("member_cid").map(|m| m.to_lowercase()) {
            Some(member) if member != client.cid && !client.members.contains(&member) => {
                return self.anonymous_error(403, "access denied, authorization failed");
            }
            Some(member) => member,
            None => client.cid.clone(),
        };
        if let Some(reply) = self.admit(&cid) {
            return reply;
        }
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let ttl = self.options.token_ttl;
        let issued = Token { client_id: id.clone(), cid, expires: Instant::now() + ttl, generation: self.generation };
        self.tokens.insert(token.clone(), issued);
        Reply::json(201, &json!({"access_token": token, "token_type": "bearer", "expires_in": ttl.as_secs()}))
    }

    /// Counts a request against `cid`; the 429 when it is over.
    fn admit(&mut self, cid: &str) -> Option<Reply> {
        let admission = self.limiter.admit(cid);
        let refused = !admission.allowed;
        let wait = admission.reset_in;
        self.admission = Some(admission);
        refused.then(|| throttled(wait))
    }

    fn anonymous_error(&mut self, status: u16, message: &str) -> Reply {
        let admission = self.anonymous.admit("");
        let refused = !admission.allowed;
        let wait = admission.reset_in;
        self.admission = Some(admission);
        if refused { throttled(wait) } else { error(status, message) }
    }
}

fn meta() -> Value {
    json!({"query_time": 0.001, "powered_by": "crowdstrike-api-gateway", "trace_id": uuid::Uuid::new_v4().to_string()})
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"meta": meta(), "errors": [{"code": status, "message": message}], "resources": []}))
}

fn throttled(wait: Duration) -> Reply {
    error(429, "API rate limit exceeded.").header("x-ratelimit-retryafter", epoch_after(wait))
}

/// `{"meta":…,"errors":[],"resources":[…]}` around resources already rendered as JSON text.
fn envelope(mut meta: Value, pagination: Option<Value>, resources: &str) -> Reply {
    if let Some(p) = pagination {
        meta["pagination"] = p;
    }
    Reply::raw(200, "application/json", format!(r#"{{"meta":{meta},"errors":[],"resources":[{resources}]}}"#))
}

fn encode_cursor(position: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!(r#"{{"version":"v1","ts":{position}}}"#))
}

fn decode_cursor(token: &str) -> Option<u64> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?).ok()?;
    serde_json::from_str::<Value>(&text).ok()?.get("ts")?.as_u64()
}

/// A numeric parameter within `range`, or the 400 naming it.
fn number(req: &Request, name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, Reply> {
    let Some(text) = req.param(name) else { return Ok(default) };
    text.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| error(400, &format!("invalid {name}: {text}")))
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        if req.path == "/oauth2/token" {
            return form_urlencoded::parse(&req.body).find(|(k, _)| k == "client_id").map(|(_, v)| v.into_owned());
        }
        let token = req.header(AUTHORIZATION.as_str())?.strip_prefix("Bearer ")?.trim();
        self.tokens.get(token).map(|t| t.client_id.clone())
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        if req.path == "/oauth2/token" && req.method == Method::POST {
            return self.token(req);
        }
        let Some(cid) = self.bearer(req).map(|t| t.cid.clone()) else {
            return self.anonymous_error(401, "access denied, invalid bearer token");
        };
        if let Some(reply) = self.admit(&cid) {
            return reply;
        }
        let tenant = self.tenants.get(&cid).expect("tokens are issued for known tenants");
        let get = req.method == Method::GET;
        let result = match req.path.as_str() {
            "/devices/queries/devices/v1" if get => query_devices(req, &cid, tenant),
            "/devices/queries/devices-scroll/v1" if get => scroll_devices(req, &cid, tenant),
            "/devices/entities/devices/v2" if !get => device_details(req, &cid, tenant),
            "/zero-trust-assessment/entities/assessments/v1" if get => assessments(req, &cid, tenant),
            "/spotlight/combined/vulnerabilities/v1" if get => vulnerabilities(req, &cid, tenant),
            "/alerts/queries/alerts/v2" if get => query_alerts(req, tenant),
            "/alerts/entities/alerts/v2" if !get => alert_details(req, tenant),
            "/alerts/combined/alerts/v1" if !get => combined_alerts(req, tenant),
            _ => Err(error(404, "Not Found")),
        };
        result.unwrap_or_else(|reply| reply)
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(secs) => {
                let wait = Duration::from_secs(secs.unwrap_or(1));
                let limit = self.limiter.limit;
                self.admission = Some(Admission { allowed: false, limit, remaining: 0, reset_in: wait });
                throttled(wait)
            }
            Fault::Status(status) => error(status, "internal server error"),
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }

    fn finish(&mut self, credential: Option<&str>, reply: &mut Reply) {
        // Injected faults count nothing: they report the sender's CID as it stands.
        let cid = credential.and_then(|id| self.clients.get(id)).map_or("", |c| c.cid.as_str());
        let admission = self.admission.take().unwrap_or_else(|| self.limiter.peek(cid));
        reply.set("x-ratelimit-limit", admission.limit);
        reply.set("x-ratelimit-remaining", admission.remaining);
        reply.set("x-cs-traceid", uuid::Uuid::new_v4());
    }
}

fn host_ids(cid: &str, range: std::ops::Range<u64>) -> String {
    let tenant = Tenant::new(cid);
    let mut out = String::with_capacity((range.end - range.start) as usize * 35);
    for i in range {
        if !out.is_empty() {
            out.push(',');
        }
        out.push('"');
        out.push_str(&tenant.host_id(i));
        out.push('"');
    }
    out
}

/// `QueryDevicesByFilter`: the returned `offset` is where the next page starts.
fn query_devices(req: &Request, cid: &str, data: &TenantData) -> Result<Reply, Reply> {
    let limit = number(req, "limit", 100, 1..=5000)?;
    let offset = number(req, "offset", 0, 0..=u64::MAX)?;
    if offset >= MAX_OFFSET {
        return Err(error(400, "offset must be less than 10000; use the scroll endpoint to page further"));
    }
    let end = (offset + limit).min(data.hosts).max(offset);
    let pagination = json!({"offset": end, "limit": limit, "total": data.hosts});
    Ok(envelope(meta(), Some(pagination), &host_ids(cid, offset..end)))
}

/// `QueryDevicesByFilterScroll`: `offset` is the token of the previous answer.
fn scroll_devices(req: &Request, cid: &str, data: &TenantData) -> Result<Reply, Reply> {
    let limit = number(req, "limit", 100, 1..=10_000)?;
    let start = match req.param("offset").filter(|o| !o.is_empty()) {
        Some(token) => decode_cursor(token).ok_or_else(|| error(400, "invalid offset token"))?,
        None => 0,
    };
    let end = (start + limit).min(data.hosts).max(start);
    let expires_at = (chrono::Utc::now() + chrono::TimeDelta::minutes(2)).timestamp_nanos_opt().unwrap_or_default();
    let pagination = json!({"offset": encode_cursor(end), "limit": limit, "total": data.hosts, "expires_at": expires_at});
    Ok(envelope(meta(), Some(pagination), &host_ids(cid, start..end)))
}

/// Renders each known id's record in request order; unknown ids are left out.
fn render(ids: &[String], tenant: &Tenant, count: u64, mut write: impl FnMut(&mut String, u64) -> bool) -> String {
    let mut out = String::new();
    for id in ids {
        let Some(i) = tenant.host_index(id, count) else { continue };
        let mark = out.len();
        if mark > 0 {
            out.push(',');
        }
        if !write(&mut out, i) {
            out.truncate(mark);
        }
    }
    out
}

/// `PostDeviceDetailsV2`: up to 5000 ids in `{"ids":[…]}`.
fn device_details(req: &Request, cid: &str, data: &TenantData) -> Result<Reply, Reply> {
    let ids: Vec<String> = req
        .json_body()
        .and_then(|b| serde_json::from_value(b.get("ids")?.clone()).ok())
        .ok_or_else(|| error(400, "body must be {\"ids\": [...]}"))?;
    if ids.is_empty() || ids.len() > 5000 {
        return Err(error(400, "between 1 and 5000 ids are allowed"));
    }
    let tenant = Tenant::new(cid);
    let body = render(&ids, &tenant, data.hosts, |out, i| {
        tenant.device(out, i);
        true
    });
    Ok(envelope(meta(), None, &body))
}

/// `getAssessmentV1`: repeated `ids`; hosts without an assessment are left out.
fn assessments(req: &Request, cid: &str, data: &TenantData) -> Result<Reply, Reply> {
    let ids: Vec<String> = req.params("ids").flat_map(|v| v.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if ids.is_empty() {
        return Err(error(400, "ids is required"));
    }
    let tenant = Tenant::new(cid);
    let body = render(&ids, &tenant, data.hosts, |out, i| {
        let assessed = tenant.assessed(i);
        if assessed {
            tenant.assessment(out, i);
        }
        assessed
    });
    Ok(envelope(
        json!({"query_time": 0.02, "powered_by": "zero-trust-assessment", "trace_id": uuid::Uuid::new_v4().to_string()}),
        None,
        &body,
    ))
}

/// `combinedQueryVulnerabilities`: `after` tokens, constant `total`, `after` empty on the last page.
fn vulnerabilities(req: &Request, cid: &str, data: &TenantData) -> Result<Reply, Reply> {
    if req.param("filter").is_none_or(|f| f.trim().is_empty()) {
        return Err(error(400, "filter is required"));
    }
    let limit = number(req, "limit", 100, 1..=5000)?;
    let facets = Facets::parse(req.params("facet")).map_err(|m| error(400, &m))?;
    let start = match req.param("after").filter(|a| !a.is_empty()) {
        Some(token) => decode_cursor(token).ok_or_else(|| error(400, "invalid after token"))?,
        None => 0,
    };
    let total = data.vulnerabilities;
    let end = (start + limit).min(total).max(start);
    let tenant = Tenant::new(cid);
    let mut out = String::with_capacity((end - start) as usize * 1500);
    for i in start..end {
        if i > start {
            out.push(',');
        }
        tenant.vulnerability(&mut out, i, data.hosts, &facets);
    }
    let after = if end < total { encode_cursor(end) } else { String::new() };
    let mut meta = meta();
    meta["powered_by"] = "spotlight-api".into();
    meta["quota"] = json!({"total": total, "used": end});
    Ok(envelope(meta, Some(json!({"limit": limit, "total": total, "after": after})), &out))
}

/// The tenant's alerts matching `filter`, in `sort` order (default newest created first).
fn select<'a>(data: &'a TenantData, filter: Option<&str>, sort: Option<&str>) -> Result<Vec<&'a Value>, Reply> {
    let filter = Filter::parse(filter.unwrap_or_default()).map_err(|m| error(400, &m))?;
    let mut selected: Vec<&Value> = data.alerts.iter().filter(|a| filter.matches(a)).collect();
    alerts::sort(&mut selected, sort.unwrap_or("created_timestamp|desc")).map_err(|m| error(400, &m))?;
    Ok(selected)
}

fn alert_json(alerts: &[&Value]) -> String {
    alerts.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
}

/// `GetQueriesAlertsV2`: composite ids; `offset` echoes the request; offset + limit ≤ 10 000.
fn query_alerts(req: &Request, data: &TenantData) -> Result<Reply, Reply> {
    let limit = number(req, "limit", 100, 1..=10_000)?;
    let offset = number(req, "offset", 0, 0..=u64::MAX)?;
    if offset + limit > MAX_OFFSET {
        return Err(error(400, "offset + limit must not exceed 10000; use the combined endpoint to page further"));
    }
    let selected = select(data, req.param("filter"), req.param("sort"))?;
    let ids: Vec<Value> = selected.iter().skip(offset as usize).take(limit as usize).map(|a| a["composite_id"].clone()).collect();
    let pagination = json!({"offset": offset, "limit": limit, "total": selected.len()});
    let ids = ids.iter().map(Value::to_string).collect::<Vec<_>>().join(",");
    Ok(envelope(meta(), Some(pagination), &ids))
}

/// `PostEntitiesAlertsV2`: `{"composite_ids":[…]}`; unknown ids are left out.
fn alert_details(req: &Request, data: &TenantData) -> Result<Reply, Reply> {
    let ids: Vec<String> = req
        .json_body()
        .and_then(|b| serde_json::from_value(b.get("composite_ids")?.clone()).ok())
        .ok_or_else(|| error(400, "body must be {\"composite_ids\": [...]}"))?;
    if ids.is_empty() || ids.len() > 1000 {
        return Err(error(400, "between 1 and 1000 composite_ids are allowed"));
    }
    let found: Vec<&Value> = ids.iter().filter_map(|id| data.alerts.iter().find(|a| a["composite_id"] == id.as_str())).collect();
    Ok(envelope(meta(), None, &alert_json(&found)))
}

/// `PostCombinedAlertsV1`: filter and sort in the JSON body, `after` cursor, limit ≤ 1000;
/// `after` is absent on the last page. The cursor is a position, so alerts that move in the
/// order between pages are skipped or repeated, as the API warns.
fn combined_alerts(req: &Request, data: &TenantData) -> Result<Reply, Reply> {
    let body = req.json_body().filter(Value::is_object).ok_or_else(|| error(400, "the body must be a JSON object"))?;
    let limit = match body.get("limit") {
        None => 100,
        Some(v) => v.as_u64().filter(|n| (1..=1000).contains(n)).ok_or_else(|| error(400, "limit must be between 1 and 1000"))?,
    };
    let start = match body.get("after").and_then(Value::as_str).filter(|a| !a.is_empty()) {
        Some(token) => decode_cursor(token).ok_or_else(|| error(400, "invalid after token"))?,
        None => 0,
    };
    let selected = select(data, body.get("filter").and_then(Value::as_str), body.get("sort").and_then(Value::as_str))?;
    let total = selected.len() as u64;
    let end = (start + limit).min(total).max(start);
    let page = &selected[start as usize..end as usize];
    let mut pagination = json!({"limit": limit, "total": total});
    if end < total {
        pagination["after"] = encode_cursor(end).into();
    }
    let mut meta = meta();
    meta["powered_by"] = "detectsapi".into();
    Ok(envelope(meta, Some(pagination), &alert_json(page)))
}
