//! The alert backlog, Kismet's logins (Basic, session cookie, API key) and the alert endpoints.

use std::collections::{HashSet, VecDeque};

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Options;
use crate::vendor::{Api, Fault, Reply, Request, mix};

pub struct State {
    options: Options,
    /// Newest last; at most `options.backlog`.
    alerts: VecDeque<Value>,
    sessions: HashSet<String>,
    /// Set when a Basic login opened a session, for the `Set-Cookie` header.
    new_session: Option<String>,
}

fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// The value of cookie `name`.
fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header("cookie")?.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// An alert record as Kismet serializes it: flat dotted field names.
pub fn alert_record(header: &str, class: &str, severity: u32, text: &str, source_mac: &str, at: DateTime<Utc>) -> Value {
    let r = mix(at.timestamp_micros() as u64 ^ crate::vendor::hash(header));
    let channel = [1, 6, 11, 36, 44][(r % 5) as usize];
    let frequency = if channel < 14 { 2_407_000 + 5000 * channel } else { 5_000_000 + 5000 * channel };
    json!({
        "kismet.alert.hash": r >> 1,
        "kismet.alert.device_key": format!("4202770D00000000_{:012X}", r >> 16),
        "kismet.alert.header": header,
        "kismet.alert.class": class,
        "kismet.alert.severity": severity,
        "kismet.alert.phy_id": 0,
        "kismet.alert.timestamp": epoch(at),
        "kismet.alert.transmitter_mac": source_mac,
        "kismet.alert.source_mac": source_mac,
        "kismet.alert.dest_mac": "FF:FF:FF:FF:FF:FF",
        "kismet.alert.other_mac": "00:00:00:00:00:00",
        "kismet.alert.channel": channel.to_string(),
        "kismet.alert.frequency": frequency as f64,
        "kismet.alert.text": text,
    })
}

impl State {
    pub fn new(options: Options) -> State {
        State { options, alerts: VecDeque::new(), sessions: HashSet::new(), new_session: None }
    }

    pub fn push(&mut self, alert: Value) {
        assert!(alert.get("kismet.alert.timestamp").is_some_and(Value::is_number), "alerts need a numeric kismet.alert.timestamp");
        self.alerts.push_back(alert);
        while self.alerts.len() > self.options.backlog.max(1) {
            self.alerts.pop_front();
        }
    }

    pub fn logout_all(&mut self) {
        self.sessions.clear();
    }

    /// Whether the request is logged in; a Basic login opens a session.
    fn logged_in(&mut self, req: &Request) -> bool {
        if let Some((user, password)) = req.basic() {
            if user == self.options.username && password == self.options.password {
                let session = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
                self.sessions.insert(session.clone());
                self.new_session = Some(session);
                return true;
            }
            return false;
        }
        let key = cookie(req, "KISMET").or_else(|| req.param("KISMET"));
        key.is_some_and(|k| self.sessions.contains(k) || self.options.api_tokens.iter().any(|t| t == k))
    }

    fn since(&self, ts: &str) -> Option<Reply> {
        let ts: f64 = ts.parse().ok()?;
        let now = epoch(Utc::now());
        let since = if ts < 0.0 { now + ts } else { ts };
        let list: Vec<&Value> = self.alerts.iter().filter(|a| a["kismet.alert.timestamp"].as_f64().is_some_and(|t| t > since)).collect();
        Some(Reply::json(200, &json!({"kismet.alert.timestamp": now, "kismet.alert.list": list})))
    }
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        req.basic().map(|(user, _)| user).or_else(|| cookie(req, "KISMET").or_else(|| req.param("KISMET")).map(str::to_string))
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        if !self.logged_in(req) {
            return Reply::raw(401, "text/plain", "Login required\n".into()).header("www-authenticate", r#"Basic realm="Kismet""#);
        }
        if req.method != Method::GET && req.method != Method::POST {
            return Reply::raw(405, "text/plain", "Method not allowed\n".into());
        }
        let path = req.path.as_str();
        if matches!(path, "/alerts/all_alerts.json" | "/alerts/all_alerts.ekjson" | "/alerts/all_alerts.prettyjson") {
            return Reply::json(200, &Value::Array(self.alerts.iter().cloned().collect()));
        }
        if path == "/session/check_session" || path == "/session/check_login" {
            return Reply::raw(200, "text/plain", "Login valid\n".into());
        }
        if let Some(reply) =
            path.strip_prefix("/alerts/last-time/").and_then(|rest| rest.strip_suffix("/alerts.json")).and_then(|ts| self.since(ts))
        {
            return reply;
        }
        Reply::raw(404, "text/plain", "Unhandled request\n".into())
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(secs) => Reply::raw(429, "text/plain", "Too many requests\n".into()).header("retry-after", secs.unwrap_or(1)),
            Fault::Status(status) => Reply::raw(status, "text/plain", "Internal server error\n".into()),
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }

    fn finish(&mut self, _credential: Option<&str>, reply: &mut Reply) {
        if let Some(session) = self.new_session.take() {
            reply.set("set-cookie", format!("KISMET={session}; Path=/"));
        }
    }
}
