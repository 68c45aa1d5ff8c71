//! The emulator's state and its one endpoint.

use std::collections::HashMap;
use std::fmt::Write;

use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use chrono::{DateTime, SecondsFormat};
use serde_json::json;

use super::Options;
use crate::vendor::{Api, Fault, Limiter, Reply, Request, hash, mix};

const ENROLLMENTS: &str = "/v1/training/enrollments";
/// Generated timestamps count from here (2025-01-01T00:00:00Z).
const BASE: i64 = 1_735_689_600;

fn ts(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub struct Account {
    pub enrollments: u64,
    tag: u64,
}

pub struct State {
    options: Options,
    accounts: HashMap<String, Account>,
    limiter: Limiter,
}

impl State {
    pub fn new(options: Options) -> State {
        let limiter = Limiter::new(options.rate_limit_per_minute.unwrap_or(u32::MAX), options.rate_limit_per_minute.is_some());
        State { options, accounts: HashMap::new(), limiter }
    }

    pub fn account(&mut self, key: &str) -> &mut Account {
        self.accounts.entry(key.to_string()).or_insert_with(|| Account { enrollments: 0, tag: hash(key) })
    }

    fn throttled(&self) -> Reply {
        let reply = message(429, "API rate limit exceeded");
        match self.options.retry_after {
            Some(secs) => reply.header("retry-after", secs),
            None => reply,
        }
    }
}

fn message(status: u16, text: &str) -> Reply {
    Reply::json(status, &json!({"message": text}))
}

fn number(req: &Request, name: &str, default: u64) -> Result<u64, Reply> {
    match req.param(name) {
        None => Ok(default),
        Some(text) => text.parse().ok().filter(|n| *n >= 1).ok_or_else(|| message(400, &format!("{name} must be a positive integer"))),
    }
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        req.header(AUTHORIZATION.as_str())?.strip_prefix("Bearer ").map(|k| k.trim().to_string())
    }

    fn answer(&mut self, req: &Request, credential: Option<&str>) -> Reply {
        let Some(key) = credential.filter(|k| self.accounts.contains_key(*k)) else { return message(401, "Unauthorized") };
        if !self.limiter.admit(key).allowed {
            return self.throttled();
        }
        if req.path != ENROLLMENTS || req.method != Method::GET {
            return message(404, "Not Found");
        }
        let (page, per_page) = match (number(req, "page", 1), number(req, "per_page", 100)) {
            (Ok(page), Ok(per_page)) => (page, per_page.min(500)),
            (Err(reply), _) | (_, Err(reply)) => return reply,
        };
        let account = &self.accounts[key];
        let start = (page - 1).saturating_mul(per_page).min(account.enrollments);
        let end = (start + per_page).min(account.enrollments);
        let mut out = String::with_capacity((end - start) as usize * 500 + 2);
        out.push('[');
        for i in start..end {
            if i > start {
                out.push(',');
            }
            enrollment(&mut out, account.tag, i);
        }
        out.push(']');
        Reply::raw(200, "application/json", out)
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(_) => self.throttled(),
            Fault::Status(status) => message(status, "Internal Server Error"),
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }

    fn finish(&mut self, _credential: Option<&str>, reply: &mut Reply) {
        reply.set("x-request-id", uuid::Uuid::new_v4());
    }
}

fn enrollment(out: &mut String, tag: u64, i: u64) {
    let r = mix(tag ^ i);
    let user = r % 5000;
    let enrolled = BASE + (r >> 16 & 0xff_ffff) as i64;
    let status = ["Passed", "Not Started", "In Progress", "Past Due"][(r >> 8) as usize % 4];
    let (content, module) = [
        ("Training Module", "Kevin Mitnick Security Awareness Training"),
        ("Uploaded Policy", "Acceptable Use Policy"),
        ("Store Purchase", "Phishing Foundations"),
    ][(r >> 12) as usize % 3];
    let (start, completion) = match status {
        "Passed" => (format!(r#""{}""#, ts(enrolled + 3600)), format!(r#""{}""#, ts(enrolled + 7200))),
        "In Progress" => (format!(r#""{}""#, ts(enrolled + 3600)), "null".to_string()),
        _ => ("null".to_string(), "null".to_string()),
    };
    let _ = write!(
        out,
        r#"{{"enrollment_id":{id},"content_type":"{content}","module_name":"{module}","user":{{"id":{uid},"first_name":"First{user}","last_name":"Last{user}","email":"user{user}@example.com"}},"campaign_name":"Campaign {campaign}","enrollment_date":"{enrolled}","start_date":{start},"completion_date":{completion},"status":"{status}","time_spent":{spent},"policy_acknowledged":{ack}}}"#,
        id = 1_000_000 + i,
        uid = 700_000 + user,
        campaign = r % 12,
        enrolled = ts(enrolled),
        spent = if status == "Passed" { 600 + r % 3000 } else { 0 },
        ack = content == "Uploaded Policy" && status == "Passed",
    );
}
