//! The emulator's state and endpoints: per-tenant alerts, the token endpoint, OData paging and
//! Graph's error envelope.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::{Value, json};

use super::Options;
use super::alerts::{Filter, time_of};
use crate::entra::{self, Entra, Refusal, ms_time};
use crate::vendor::{Api, Fault, Limiter, Reply, Request};

const ALERTS: &str = "/v1.0/security/alerts_v2";

pub struct State {
    options: Options,
    pub base: String,
    pub entra: Entra,
    /// By tenant, in insertion order.
    alerts: HashMap<String, Vec<Value>>,
    limiter: Limiter,
    /// The wait of the request being answered when it was throttled.
    retry_after: Option<u64>,
}

/// Graph's error body, with the `innerError` every answer carries.
pub fn error(status: u16, code: &str, message: &str) -> Reply {
    let request_id = uuid::Uuid::new_v4().to_string();
    Reply::json(
        status,
        &json!({"error": {"code": code, "message": message, "innerError": {
            "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(), "request-id": request_id, "client-request-id": request_id,
        }}}),
    )
}

fn skiptoken(skip: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("skip={skip}"))
}

fn parse_skiptoken(token: &str) -> Option<usize> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?.strip_prefix("skip=")?.parse().ok()
}

impl State {
    pub fn new(options: Options) -> State {
        let limiter = Limiter::new(options.rate_limit_per_minute, options.enforce_rate_limit);
        let entra = Entra::new("https://graph.microsoft.com", "SecurityAlert.Read.All", options.token_ttl);
        State { options, base: String::new(), entra, alerts: HashMap::new(), limiter, retry_after: None }
    }

    pub fn tenant(&mut self, tenant: &str) -> &mut Vec<Value> {
        self.alerts.entry(tenant.to_string()).or_default()
    }

    pub fn add_alerts(&mut self, tenant: &str, batch: Vec<Value>) {
        let stored = self.tenant(tenant);
        for alert in batch {
            let id = alert.get("id").and_then(Value::as_str).expect("alerts need an id").to_string();
            assert!(time_of(&alert, "lastUpdateDateTime").is_some(), "alerts need an RFC 3339 lastUpdateDateTime");
            match stored.iter_mut().find(|a| a["id"] == id.as_str()) {
                Some(old) => *old = alert,
                None => stored.push(alert),
            }
        }
    }

    pub fn update_alert(&mut self, tenant: &str, id: &str, changes: Value) -> bool {
        let Some(alert) = self.tenant(tenant).iter_mut().find(|a| a["id"] == id) else { return false };
        alert["lastUpdateDateTime"] = ms_time(Utc::now()).into();
        if let (Some(alert), Value::Object(changes)) = (alert.as_object_mut(), changes) {
            alert.extend(changes);
        }
        true
    }

    fn list(&self, req: &Request, tenant: &str) -> Result<Reply, Reply> {
        let top = match req.param("$top") {
            None => self.options.default_top,
            Some(text) => {
                let top: usize =
                    text.parse().map_err(|_| error(400, "BadRequest", &format!("Invalid value '{text}' for $top query option.")))?;
                if top > self.options.max_top {
                    let message = format!(
                        "The limit of '{}' for Top query has been exceeded. The value from the incoming request is '{top}'.",
                        self.options.max_top
                    );
                    return Err(error(400, "BadRequest", &message));
                }
                top.max(1)
            }
        };
        let skip = match (req.param("$skiptoken"), req.param("$skip")) {
            (Some(token), _) => parse_skiptoken(token).ok_or_else(|| error(400, "BadRequest", "Invalid $skiptoken."))?,
            (None, Some(text)) => {
                text.parse().map_err(|_| error(400, "BadRequest", &format!("Invalid value '{text}' for $skip query option.")))?
            }
            (None, None) => 0,
        };
        let filter = Filter::parse(req.param("$filter").unwrap_or_default()).map_err(|m| error(400, "BadRequest", &m))?;
        let empty = Vec::new();
        let mut selected: Vec<&Value> = self.alerts.get(tenant).unwrap_or(&empty).iter().filter(|a| filter.matches(a)).collect();
        let (field, ascending) = match req.param("$orderby").map(|o| o.split_whitespace().collect::<Vec<_>>()) {
            None => ("createdDateTime", false),
            Some(words) => match words.as_slice() {
                [f] | [f, "desc"] | [f, "asc"] if ["createdDateTime", "lastUpdateDateTime"].contains(f) => {
                    (*f, words.get(1) == Some(&"asc"))
                }
                _ => return Err(error(400, "BadRequest", "$orderby is supported on createdDateTime and lastUpdateDateTime only.")),
            },
        };
        selected.sort_by(|a, b| {
            let order = time_of(a, field).cmp(&time_of(b, field)).then_with(|| a["id"].as_str().cmp(&b["id"].as_str()));
            if ascending { order } else { order.reverse() }
        });
        let total = selected.len();
        let start = skip.min(total);
        let end = (start + top).min(total);
        let mut body = json!({"@odata.context": format!("{}/v1.0/$metadata#security/alerts_v2", self.base)});
        if req.param("$count") == Some("true") {
            body["@odata.count"] = total.into();
        }
        body["value"] = Value::Array(selected[start..end].iter().map(|a| (*a).clone()).collect());
        if end < total {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for name in ["$filter", "$orderby", "$count"] {
                if let Some(value) = req.param(name) {
                    query.append_pair(name, value);
                }
            }
            query.append_pair("$top", &top.to_string());
            query.append_pair("$skiptoken", &skiptoken(end));
            body["@odata.nextLink"] = format!("{}{ALERTS}?{}", self.base, query.finish()).into();
        }
        Ok(Reply::json(200, &body))
    }

    fn throttled(&mut self, wait: Duration) -> Reply {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.retry_after = Some(secs.max(1));
        error(429, "TooManyRequests", "Too many requests.")
    }
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        self.entra.credential(req)
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        if let Some((tenant, v2)) = entra::token_path(&req.path) {
            let tenant = tenant.to_string();
            return self.entra.issue(req, &tenant, v2, Utc::now());
        }
        let (tenant, client) = match self.entra.bearer(req, Utc::now()) {
            Ok(token) => (token.tenant.clone(), token.client_id.clone()),
            Err(Refusal::Missing) => return error(401, "InvalidAuthenticationToken", "Access token is empty."),
            Err(Refusal::Unknown) => return error(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed."),
            Err(Refusal::Expired) => return error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
        };
        let admission = self.limiter.admit(&format!("{tenant}/{client}"));
        if !admission.allowed {
            return self.throttled(admission.reset_in);
        }
        if req.method != Method::GET {
            return error(405, "Request_BadRequest", "The HTTP method is not allowed for the resource.");
        }
        if req.path == ALERTS {
            return self.list(req, &tenant).unwrap_or_else(|reply| reply);
        }
        if let Some(id) = req.path.strip_prefix(ALERTS).and_then(|p| p.strip_prefix('/')) {
            return match self.alerts.get(&tenant).and_then(|all| all.iter().find(|a| a["id"] == id)) {
                Some(alert) => {
                    let mut body = alert.clone();
                    body["@odata.context"] = format!("{}/v1.0/$metadata#security/alerts_v2/$entity", self.base).into();
                    Reply::json(200, &body)
                }
                None => error(404, "NotFound", &format!("Alert {id} was not found.")),
            };
        }
        let segment = req.path.rsplit('/').next().unwrap_or_default();
        error(400, "BadRequest", &format!("Resource not found for the segment '{segment}'."))
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(secs) => self.throttled(Duration::from_secs(secs.unwrap_or(10))),
            Fault::Status(status) => error(status, "UnknownError", "An unexpected error occurred."),
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }

    fn finish(&mut self, _credential: Option<&str>, reply: &mut Reply) {
        if let Some(secs) = self.retry_after.take() {
            reply.set("retry-after", secs);
        }
        let id = uuid::Uuid::new_v4();
        reply.set("request-id", id);
        reply.set("client-request-id", id);
        reply.set(
            "x-ms-ags-diagnostic",
            r#"{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"001","RoleInstance":"AM1PEPF00000000"}}"#,
        );
    }
}
