//! Hosts, triggers and problems, sessions and API tokens, and the JSON-RPC methods.

use std::collections::{BTreeMap, HashMap};

use axum::http::Method;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use std::collections::HashSet;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::Options;
use crate::vendor::{Api, Fault, Reply, Request};

pub struct Host {
    pub name: String,
    pub ip: String,
    pub port: u16,
}

pub struct Trigger {
    pub hostid: u64,
    pub description: String,
    pub priority: u8,
}

pub struct Problem {
    pub objectid: u64,
    pub clock: i64,
    pub ns: u32,
    pub name: String,
    pub severity: u8,
    pub tags: Vec<(String, String)>,
    /// The recovery event: (eventid, clock).
    pub recovery: Option<(u64, i64)>,
}

pub struct State {
    pub options: Options,
    users: HashMap<String, String>,
    /// Session id → user.
    sessions: HashMap<String, String>,
    /// Sessions ended by `logout_all` or `user.logout`.
    terminated: HashSet<String>,
    /// API token → user.
    api_tokens: HashMap<String, String>,
    pub hosts: BTreeMap<u64, Host>,
    pub triggers: BTreeMap<u64, Trigger>,
    /// By eventid.
    pub problems: BTreeMap<u64, Problem>,
    next_id: u64,
}

/// A JSON-RPC error, answered with HTTP 200 as Zabbix does.
fn rpc_error(id: &Value, code: i64, message: &str, data: &str) -> Reply {
    Reply::raw(
        200,
        "application/json",
        json!({"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": data}, "id": id}).to_string(),
    )
}

fn invalid_params(id: &Value, data: &str) -> Reply {
    rpc_error(id, -32602, "Invalid params.", data)
}

/// `version` as (major, minor).
fn version(text: &str) -> (u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// An id list parameter: one id or an array of ids, as numbers or strings.
fn ids(params: &Map<String, Value>, name: &str) -> Option<Vec<u64>> {
    let value = params.get(name)?;
    let one = |v: &Value| v.as_u64().or_else(|| v.as_str()?.parse().ok());
    Some(match value {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    })
}

fn number(params: &Map<String, Value>, name: &str) -> Option<i64> {
    let v = params.get(name)?;
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn truthy(params: &Map<String, Value>, name: &str) -> bool {
    match params.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        _ => false,
    }
}

/// Keeps the fields `output` asks for: `extend`, a list of names, or (default) `extend`.
fn project(object: Value, output: Option<&Value>, always: &[&str]) -> Value {
    let Some(Value::Array(fields)) = output else { return object };
    let Value::Object(all) = object else { return object };
    let keep: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
    Value::Object(all.into_iter().filter(|(k, _)| keep.contains(&k.as_str()) || always.contains(&k.as_str())).collect())
}

impl State {
    pub fn new(options: Options) -> State {
        let mut users = HashMap::new();
        users.insert(options.username.clone(), options.password.clone());
        State {
            options,
            users,
            sessions: HashMap::new(),
            terminated: HashSet::new(),
            api_tokens: HashMap::new(),
            hosts: BTreeMap::new(),
            triggers: BTreeMap::new(),
            problems: BTreeMap::new(),
            next_id: 10_000,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn add_api_token(&mut self, token: &str) {
        let user = self.options.username.clone();
        self.api_tokens.insert(token.to_string(), user);
    }

    pub fn logout_all(&mut self) {
        self.terminated.extend(self.sessions.drain().map(|(s, _)| s));
    }

    pub fn add_user(&mut self, user: &str, password: &str) {
        self.users.insert(user.to_string(), password.to_string());
    }

    pub fn host(&mut self, name: &str, ip: &str) -> u64 {
        if let Some((id, _)) = self.hosts.iter().find(|(_, h)| h.name == name) {
            return *id;
        }
        let id = self.id();
        self.hosts.insert(id, Host { name: name.to_string(), ip: ip.to_string(), port: 10050 });
        id
    }

    pub fn trigger(&mut self, hostid: u64, description: &str, priority: u8) -> u64 {
        if let Some((id, _)) = self.triggers.iter().find(|(_, t)| t.hostid == hostid && t.description == description) {
            return *id;
        }
        let id = self.id();
        self.triggers.insert(id, Trigger { hostid, description: description.to_string(), priority });
        id
    }

    pub fn raise(&mut self, triggerid: u64, name: &str, severity: u8, tags: Vec<(String, String)>) -> u64 {
        let now = Utc::now();
        let id = self.id();
        let problem = Problem {
            objectid: triggerid,
            clock: now.timestamp(),
            ns: now.timestamp_subsec_nanos(),
            name: name.to_string(),
            severity,
            tags,
            recovery: None,
        };
        self.problems.insert(id, problem);
        id
    }

    pub fn resolve(&mut self, eventid: u64) -> bool {
        let recovery = self.id();
        match self.problems.get_mut(&eventid) {
            Some(p) if p.recovery.is_none() => {
                p.recovery = Some((recovery, Utc::now().timestamp()));
                true
            }
            _ => false,
        }
    }

    fn problem_json(&self, eventid: u64, p: &Problem, select_tags: bool) -> Value {
        let (r_eventid, r_clock) = p.recovery.unwrap_or((0, 0));
        let mut out = json!({
            "eventid": eventid.to_string(), "source": "0", "object": "0", "objectid": p.objectid.to_string(),
            "clock": p.clock.to_string(), "ns": p.ns.to_string(), "r_eventid": r_eventid.to_string(), "r_clock": r_clock.to_string(),
            "r_ns": "0", "correlationid": "0", "userid": "0", "name": p.name, "acknowledged": "0", "severity": p.severity.to_string(),
            "opdata": "", "suppressed": "0", "urls": [], "cause_eventid": "0",
        });
        if select_tags {
            out["tags"] = p.tags.iter().map(|(tag, value)| json!({"tag": tag, "value": value})).collect();
        }
        out
    }

    fn problem_get(&self, params: &Map<String, Value>) -> Result<Value, String> {
        if let Some(field) = params.get("sortfield").and_then(Value::as_str)
            && !["eventid", "clock"].contains(&field)
        {
            return Err("Invalid parameter \"/sortfield/1\": value must be one of \"eventid\", \"clock\".".into());
        }
        let recent = truthy(params, "recent");
        let visible_since = Utc::now().timestamp() - self.options.ok_period.as_secs() as i64;
        let eventids = ids(params, "eventids");
        let objectids = ids(params, "objectids");
        let hostids = ids(params, "hostids");
        let severities = ids(params, "severities");
        let (from_id, till_id) = (number(params, "eventid_from"), number(params, "eventid_till"));
        let (from_time, till_time) = (number(params, "time_from"), number(params, "time_till"));
        let mut selected: Vec<(u64, &Problem)> = self
            .problems
            .iter()
            .filter(|(id, p)| {
                let shown = match p.recovery {
                    None => true,
                    Some((_, r_clock)) => recent && r_clock >= visible_since,
                };
                shown
                    && eventids.as_ref().is_none_or(|ids| ids.contains(id))
                    && objectids.as_ref().is_none_or(|ids| ids.contains(&p.objectid))
                    && hostids.as_ref().is_none_or(|ids| self.triggers.get(&p.objectid).is_some_and(|t| ids.contains(&t.hostid)))
                    && severities.as_ref().is_none_or(|s| s.contains(&u64::from(p.severity)))
                    && from_id.is_none_or(|f| **id as i64 >= f)
                    && till_id.is_none_or(|t| **id as i64 <= t)
                    && from_time.is_none_or(|f| p.clock >= f)
                    && till_time.is_none_or(|t| p.clock <= t)
            })
            .map(|(id, p)| (*id, p))
            .collect();
        if params.get("sortfield").and_then(Value::as_str) == Some("clock") {
            selected.sort_by_key(|(id, p)| (p.clock, *id));
        }
        let descending = params.get("sortorder").and_then(Value::as_str).is_some_and(|o| o.eq_ignore_ascii_case("DESC"));
        if descending && params.contains_key("sortfield") {
            selected.reverse();
        }
        if let Some(limit) = number(params, "limit") {
            selected.truncate(limit.max(0) as usize);
        }
        if truthy(params, "countOutput") {
            return Ok(Value::String(selected.len().to_string()));
        }
        let select_tags = params.contains_key("selectTags");
        let output = params.get("output");
        Ok(selected.into_iter().map(|(id, p)| project(self.problem_json(id, p, select_tags), output, &["tags"])).collect())
    }

    fn trigger_get(&self, params: &Map<String, Value>) -> Value {
        let triggerids = ids(params, "triggerids");
        let hostids = ids(params, "hostids");
        let select_hosts = params.get("selectHosts");
        self.triggers
            .iter()
            .filter(|(id, t)| triggerids.as_ref().is_none_or(|ids| ids.contains(id)) && hostids.as_ref().is_none_or(|ids| ids.contains(&t.hostid)))
            .map(|(id, t)| {
                let open = self.problems.values().any(|p| p.objectid == *id && p.recovery.is_none());
                let mut out = json!({
                    "triggerid": id.to_string(), "expression": format!("{{{}}}>0", id + 1_000_000), "description": t.description, "url": "",
                    "status": "0", "value": if open { "1" } else { "0" }, "priority": t.priority.to_string(), "lastchange": Utc::now().timestamp().to_string(),
                    "comments": "", "error": "", "templateid": "0", "type": "0", "state": "0", "flags": "0", "recovery_mode": "0",
                    "correlation_mode": "0", "manual_close": "0", "opdata": "", "event_name": "", "uuid": "", "url_name": "",
                });
                out = project(out, params.get("output"), &[]);
                if let Some(select) = select_hosts {
                    let host = &self.hosts[&t.hostid];
                    let host = json!({"hostid": t.hostid.to_string(), "host": host.name, "name": host.name, "status": "0"});
                    out["hosts"] = json!([project(host, Some(select), &[])]);
                }
                out
            })
            .collect()
    }

    fn host_get(&self, params: &Map<String, Value>) -> Value {
        let hostids = ids(params, "hostids");
        let select_interfaces = params.get("selectInterfaces");
        self.hosts
            .iter()
            .filter(|(id, _)| hostids.as_ref().is_none_or(|ids| ids.contains(id)))
            .map(|(id, h)| {
                let mut out = project(
                    json!({"hostid": id.to_string(), "host": h.name, "name": h.name, "status": "0", "description": ""}),
                    params.get("output"),
                    &[],
                );
                if let Some(select) = select_interfaces {
                    let interface = json!({
                        "interfaceid": (id + 1).to_string(), "hostid": id.to_string(), "main": "1", "type": "1", "useip": "1",
                        "ip": h.ip, "dns": "", "port": h.port.to_string(), "available": "1", "error": "",
                    });
                    out["interfaces"] = json!([project(interface, Some(select), &[])]);
                }
                out
            })
            .collect()
    }

    fn login(&mut self, id: &Value, params: &Map<String, Value>) -> Reply {
        let (major, minor) = version(&self.options.version);
        let modern = (major, minor) >= (5, 4);
        let (name_field, other) = if modern { ("username", "user") } else { ("user", "username") };
        if params.contains_key(other) {
            return invalid_params(id, &format!("Invalid parameter \"/\": unexpected parameter \"{other}\"."));
        }
        let (Some(user), Some(password)) = (params.get(name_field).and_then(Value::as_str), params.get("password").and_then(Value::as_str))
        else {
            return invalid_params(id, &format!("Invalid parameter \"/\": the parameter \"{name_field}\" is missing."));
        };
        if self.users.get(user).is_none_or(|p| p != password) {
            return rpc_error(id, -32500, "Application error.", "Incorrect user name or password or account is temporarily blocked.");
        }
        let session = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
        self.sessions.insert(session.clone(), user.to_string());
        let result = if truthy(params, "userData") {
            json!({"userid": "1", "username": user, "sessionid": session, "debug_mode": 0, "gui_access": "0", "type": 3})
        } else {
            Value::String(session)
        };
        Reply::raw(200, "application/json", json!({"jsonrpc": "2.0", "result": result, "id": id}).to_string())
    }

    /// The session or API token a request authenticates with, by the version's rules: the `auth`
    /// member before 7.2, `Authorization: Bearer` from 6.4.
    fn authenticated(&self, req: &Request, body: &Map<String, Value>) -> bool {
        let v = version(&self.options.version);
        let member = body.get("auth").and_then(Value::as_str).filter(|_| v < (7, 2));
        let bearer = req.header(AUTHORIZATION.as_str()).and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|_| v >= (6, 4));
        let known = |t: &str| self.sessions.contains_key(t) || self.api_tokens.contains_key(t);
        member.or(bearer).is_some_and(known)
    }

    fn call(&mut self, req: &Request, body: &Map<String, Value>) -> Reply {
        let id = body.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) =
            body.get("method").and_then(Value::as_str).filter(|_| body.get("jsonrpc").and_then(Value::as_str) == Some("2.0"))
        else {
            return rpc_error(&Value::Null, -32600, "Invalid request.", "The received JSON is not a valid JSON-RPC Request.");
        };
        let empty = Map::new();
        let params = match body.get("params") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(Value::Array(a)) if a.is_empty() => &empty,
            Some(_) => return invalid_params(&id, "Invalid parameter \"/\": an array is expected."),
        };
        let method = method.to_ascii_lowercase();
        let bearer = req.header(AUTHORIZATION.as_str()).is_some_and(|h| h.starts_with("Bearer "));
        match method.as_str() {
            "user.login" | "apiinfo.version" if body.get("auth").is_some_and(|a| !a.is_null()) || bearer => {
                return invalid_params(&id, &format!("The \"{method}\" method must be called without the \"auth\" parameter."));
            }
            "user.login" => return self.login(&id, params),
            "apiinfo.version" => {
                return Reply::raw(
                    200,
                    "application/json",
                    json!({"jsonrpc": "2.0", "result": self.options.version, "id": id}).to_string(),
                );
            }
            _ => {}
        }
        if !["problem.get", "trigger.get", "host.get", "user.logout", "event.get"].contains(&method.as_str()) {
            return rpc_error(
                &id,
                -32601,
                "Method not found.",
                &format!("Incorrect API \"{}\".", method.split('.').next().unwrap_or_default()),
            );
        }
        if !self.authenticated(req, body) {
            let sent = body
                .get("auth")
                .and_then(Value::as_str)
                .or_else(|| req.header(AUTHORIZATION.as_str())?.strip_prefix("Bearer "))
                .map(str::trim);
            let terminated = sent.is_some_and(|t| self.terminated.contains(t));
            return invalid_params(&id, if terminated { "Session terminated, re-login, please." } else { "Not authorised." });
        }
        let result = match method.as_str() {
            "problem.get" | "event.get" => match self.problem_get(params) {
                Ok(result) => result,
                Err(message) => return invalid_params(&id, &message),
            },
            "trigger.get" => self.trigger_get(params),
            "host.get" => self.host_get(params),
            _ => {
                let sent = body
                    .get("auth")
                    .and_then(Value::as_str)
                    .or_else(|| req.header(AUTHORIZATION.as_str())?.strip_prefix("Bearer "))
                    .map(str::trim);
                if let Some(token) = sent
                    && self.sessions.remove(token).is_some()
                {
                    self.terminated.insert(token.to_string());
                }
                Value::Bool(true)
            }
        };
        Reply::raw(200, "application/json", json!({"jsonrpc": "2.0", "result": result, "id": id}).to_string())
    }
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        let body: Value = serde_json::from_slice(&req.body).ok()?;
        if body.get("method").and_then(Value::as_str) == Some("user.login") {
            let params = body.get("params")?;
            return params.get("username").or_else(|| params.get("user")).and_then(Value::as_str).map(str::to_string);
        }
        let token = body.get("auth").and_then(Value::as_str).map(str::to_string);
        let token = token.or_else(|| req.header(AUTHORIZATION.as_str())?.strip_prefix("Bearer ").map(|t| t.trim().to_string()))?;
        Some(self.sessions.get(&token).or_else(|| self.api_tokens.get(&token)).cloned().unwrap_or(token))
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        if req.path != "/api_jsonrpc.php" {
            return Reply::raw(404, "text/html; charset=UTF-8", "<html><body><h1>Not Found</h1></body></html>".into());
        }
        if req.method != Method::POST {
            return Reply::raw(412, "text/html; charset=UTF-8", "<html><body><h1>Precondition Failed</h1></body></html>".into());
        }
        let content_type =
            req.header(CONTENT_TYPE.as_str()).unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !["application/json-rpc", "application/json", "application/jsonrequest"].contains(&content_type.as_str()) {
            return Reply::raw(412, "text/html; charset=UTF-8", "<html><body><h1>Precondition Failed</h1></body></html>".into());
        }
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(body) => body,
            Err(_) => {
                return rpc_error(
                    &Value::Null,
                    -32700,
                    "Parse error.",
                    "Invalid JSON. An error occurred on the server while parsing the JSON text.",
                );
            }
        };
        match body {
            Value::Object(call) => self.call(req, &call),
            Value::Array(batch) if !batch.is_empty() => {
                let answers: Vec<Value> = batch
                    .iter()
                    .map(|call| match call.as_object() {
                        Some(call) => serde_json::from_str(&self.call(req, call).body).unwrap_or(Value::Null),
                        None => json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request.", "data": "The received JSON is not a valid JSON-RPC Request."}, "id": null}),
                    })
                    .collect();
                Reply::raw(200, "application/json", Value::Array(answers).to_string())
            }
            _ => rpc_error(&Value::Null, -32600, "Invalid request.", "The received JSON is not a valid JSON-RPC Request."),
        }
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(secs) => {
                Reply::raw(429, "text/html; charset=UTF-8", "<html><body><h1>429 Too Many Requests</h1></body></html>".into())
                    .header("retry-after", secs.unwrap_or(1))
            }
            Fault::Status(status) => {
                Reply::raw(status, "text/html; charset=UTF-8", format!("<html><body><h1>{status} Error</h1></body></html>"))
            }
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }
}
