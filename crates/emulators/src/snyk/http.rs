//! The emulator's state and endpoints: tokens and their orgs, REST versioning and paging, the
//! JSON:API envelope and errors, generated projects, issues and members.

use std::collections::HashMap;
use std::fmt::Write;

use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, SecondsFormat};
use serde_json::{Value, json};

use super::Options;
use crate::net::json_str;
use crate::vendor::{Api, Fault, Limiter, Reply, Request, hash, mix, uuid_of};

const JSON_API: &str = "application/vnd.api+json";
/// GA versions of the endpoints; a request is served the newest at or before the date it asks for.
const VERSIONS: &[&str] = &["2022-04-06", "2023-05-29", "2024-01-23", "2024-05-23", "2024-08-25", "2024-10-15"];
/// Generated timestamps count from here (2025-01-01T00:00:00Z).
const BASE: i64 = 1_735_689_600;

fn ts(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub struct Org {
    pub name: String,
    pub projects: u64,
    pub issues: u64,
    pub members: u64,
    tag: u64,
}

pub struct State {
    options: Options,
    /// Each token's orgs, in the order added.
    tokens: HashMap<String, Vec<String>>,
    orgs: HashMap<String, Org>,
    limiter: Limiter,
    /// `version` as requested and served, for the headers of the answer being built.
    versions: Option<(String, String)>,
}

impl State {
    pub fn new(options: Options) -> State {
        let mut limiter = Limiter::new(options.rate_limit_per_minute.unwrap_or(u32::MAX), options.rate_limit_per_minute.is_some());
        limiter.refusal_extends = true;
        State { options, tokens: HashMap::new(), orgs: HashMap::new(), limiter, versions: None }
    }

    pub fn add_token(&mut self, token: &str) {
        self.tokens.entry(token.to_string()).or_default();
    }

    pub fn add_org(&mut self, token: &str, id: &str, name: &str) {
        let orgs = self.tokens.entry(token.to_string()).or_default();
        if !orgs.iter().any(|o| o == id) {
            orgs.push(id.to_string());
        }
        self.org(id).name = name.to_string();
    }

    pub fn org(&mut self, id: &str) -> &mut Org {
        self.orgs.entry(id.to_string()).or_insert_with(|| Org { name: id.to_string(), projects: 0, issues: 0, members: 0, tag: hash(id) })
    }

    fn token<'a>(&self, req: &'a Request) -> Option<&'a str> {
        let header = req.header(AUTHORIZATION.as_str())?.trim();
        match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("token") => self.options.accept_token_scheme.then_some(token.trim()),
            Some(_) => None,
            None => self.options.accept_raw_token.then_some(header),
        }
    }
}

/// A JSON:API error document (`status` is a string there).
fn error(status: u16, detail: &str, parameter: Option<&str>) -> Reply {
    let mut e = json!({"id": uuid::Uuid::new_v4().to_string(), "status": status.to_string(), "detail": detail});
    if let Some(p) = parameter {
        e["source"] = json!({"parameter": p});
    }
    let mut reply = Reply::json(status, &json!({"jsonapi": {"version": "1.0"}, "errors": [e]}));
    reply.content_type = JSON_API;
    reply
}

/// v1's flat error body.
fn v1_error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"code": status, "error": message, "message": message}))
}

fn is_v1(req: &Request) -> bool {
    req.path.starts_with("/v1/")
}

/// The version served for a `version` parameter, or the 400/404 saying why none is.
fn served(requested: Option<&str>) -> Result<(String, String), Reply> {
    let requested = requested.ok_or_else(|| error(400, "missing required query parameter 'version'", Some("version")))?;
    let (date, stability) = requested.split_once('~').unwrap_or((requested, "ga"));
    let invalid = || error(400, &format!("invalid version '{requested}'"), Some("version"));
    if !["ga", "beta", "experimental"].contains(&stability) || NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() || date.len() != 10 {
        return Err(invalid());
    }
    let served = VERSIONS
        .iter()
        .rev()
        .find(|v| **v <= date)
        .ok_or_else(|| error(404, &format!("no version on or before {date}"), Some("version")))?;
    Ok((requested.to_string(), served.to_string()))
}

fn page_limit(req: &Request) -> Result<u64, Reply> {
    let Some(text) = req.param("limit") else { return Ok(10) };
    let bad = || error(400, &format!("limit must be a multiple of 10 between 10 and 100, got '{text}'"), Some("limit"));
    let limit: u64 = text.parse().map_err(|_| bad())?;
    if (10..=100).contains(&limit) && limit.is_multiple_of(10) { Ok(limit) } else { Err(bad()) }
}

fn cursor(position: u64) -> String {
    format!("v1.{}", URL_SAFE_NO_PAD.encode(format!(r#"{{"position":{position}}}"#)))
}

fn position(token: &str) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(token.strip_prefix("v1.")?).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?.get("position")?.as_u64()
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        let header = req.header(AUTHORIZATION.as_str())?.trim();
        Some(header.split_once(' ').map_or(header, |(_, t)| t.trim()).to_string())
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        let v1 = is_v1(req);
        let Some(token) = self.token(req).filter(|t| self.tokens.contains_key(*t)).map(str::to_string) else {
            return if v1 { v1_error(401, "Not authorised") } else { error(401, "Unauthorized", None) };
        };
        if !self.limiter.admit(&token).allowed {
            return self.fault(Fault::Throttle(None), Some(&token));
        }
        let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        if req.method != Method::GET {
            return if v1 { v1_error(405, "Method Not Allowed") } else { error(405, "method not allowed", None) };
        }
        let visible = |id: &str| self.tokens[&token].iter().any(|o| o == id);
        if v1 {
            return match segments.as_slice() {
                ["v1", "org", id, "members"] if visible(id) => members(&self.orgs[*id]),
                _ => v1_error(404, "Not Found"),
            };
        }
        let versions = match served(req.param("version")) {
            Ok(v) => v,
            Err(reply) => return reply,
        };
        self.versions = Some(versions);
        let limit = match page_limit(req) {
            Ok(l) => l,
            Err(reply) => return reply,
        };
        let start = match req.param("starting_after").map(position) {
            None => 0,
            Some(Some(p)) => p,
            Some(None) => return error(400, "invalid starting_after cursor", Some("starting_after")),
        };
        match segments.as_slice() {
            ["rest", "orgs"] => {
                let ids = &self.tokens[&token];
                let render = |out: &mut String, i: u64| org(out, &ids[i as usize], &self.orgs[&ids[i as usize]]);
                page(req, start, limit, ids.len() as u64, render)
            }
            ["rest", "orgs", id, "projects"] if visible(id) => {
                page(req, start, limit, self.orgs[*id].projects, |out, i| project(out, id, &self.orgs[*id], i))
            }
            ["rest", "orgs", id, "issues"] if visible(id) => {
                page(req, start, limit, self.orgs[*id].issues, |out, i| issue(out, id, &self.orgs[*id], i))
            }
            _ => error(404, "Not Found", None),
        }
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        let status = match fault {
            Fault::Throttle(_) => 429,
            Fault::Status(status) => status,
            Fault::Reset => unreachable!("resets are not answered"),
        };
        let detail = if status == 429 { "Too many requests, please try again later." } else { "Internal Server Error" };
        error(status, detail, None)
    }

    fn finish(&mut self, _credential: Option<&str>, reply: &mut Reply) {
        reply.set("snyk-request-id", uuid::Uuid::new_v4());
        if let Some((requested, served)) = self.versions.take() {
            let stage = requested.split_once('~').map_or("ga", |(_, s)| s).to_string();
            reply.set("snyk-version-requested", requested);
            reply.set("snyk-version-served", served);
            reply.set("snyk-version-lifecycle-stage", stage);
        }
    }
}

/// One page of `total` items from `start`, with `self`, `first` and (unless last) `next` links
/// that repeat the request's parameters.
fn page(req: &Request, start: u64, limit: u64, total: u64, mut render: impl FnMut(&mut String, u64)) -> Reply {
    let start = start.min(total);
    let end = (start + limit).min(total);
    let mut out = String::from(r#"{"jsonapi":{"version":"1.0"},"data":["#);
    for i in start..end {
        if i > start {
            out.push(',');
        }
        render(&mut out, i);
    }
    let link = |after: Option<String>| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in req.query.iter().filter(|(k, _)| k != "starting_after" && k != "ending_before") {
            q.append_pair(k, v);
        }
        if let Some(after) = after {
            q.append_pair("starting_after", &after);
        }
        json_str(&format!("{}?{}", req.path, q.finish()))
    };
    let self_link = link((start > 0).then(|| cursor(start)));
    let _ = write!(out, r#"],"links":{{"self":{self_link},"first":{}"#, link(None));
    if end < total {
        let _ = write!(out, r#","next":{}"#, link(Some(cursor(end))));
    }
    out.push_str("}}");
    Reply::raw(200, JSON_API, out)
}

fn org(out: &mut String, id: &str, org: &Org) {
    let slug: String = org.name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let _ = write!(
        out,
        r#"{{"id":{id},"type":"org","attributes":{{"name":{name},"slug":{slug},"group_id":"{group}","is_personal":false,"access_requests_enabled":false,"created_at":"{created}","updated_at":"{created}"}}}}"#,
        id = json_str(id),
        name = json_str(&org.name),
        slug = json_str(&slug),
        group = uuid_of(0x5e1c, 0),
        created = ts(BASE),
    );
}

fn project(out: &mut String, org_id: &str, org: &Org, i: u64) {
    let r = mix(org.tag ^ i);
    let (kind, file) = [("npm", "package.json"), ("maven", "pom.xml"), ("pip", "requirements.txt"), ("sast", "")][(r % 4) as usize];
    let _ = write!(
        out,
        r#"{{"id":"{id}","type":"project","attributes":{{"name":"acme/service-{i}({branch})","type":"{kind}","target_file":"{file}","target_reference":"{branch}","origin":"github","created":"{created}","status":"active","business_criticality":[],"environment":[],"lifecycle":[],"tags":[]}},"relationships":{{"organization":{{"data":{{"type":"org","id":{org}}}}},"target":{{"data":{{"type":"target","id":"{target}"}}}}}}}}"#,
        id = uuid_of(org.tag, i),
        branch = if r.is_multiple_of(3) { "develop" } else { "main" },
        created = ts(BASE + (r >> 16 & 0xff_ffff) as i64),
        org = json_str(org_id),
        target = uuid_of(org.tag ^ 0x7a, i / 3),
    );
}

fn issue(out: &mut String, org_id: &str, org: &Org, i: u64) {
    let r = mix(org.tag ^ i ^ 0x155e);
    let kind = ["package_vulnerability", "package_vulnerability", "code", "license", "config"][(r % 5) as usize];
    let severity = ["info", "low", "medium", "high", "critical"][(r >> 4) as usize % 5];
    let resolved = r >> 8 & 3 == 0;
    let created = BASE + (r >> 16 & 0xff_ffff) as i64;
    let _ = write!(
        out,
        r#"{{"id":"{id}","type":"issue","attributes":{{"key":"SNYK-JS-PKG{n}-{key}","title":"Prototype Pollution in pkg{n}","type":"{kind}","status":"{status}","effective_severity_level":"{severity}","ignored":false,"created_at":"{created}","updated_at":"{updated}","problems":[{{"id":"SNYK-JS-PKG{n}-{key}","source":"SNYK","type":"vulnerability"}}],"coordinates":[{{"is_fixable_snyk":true,"is_upgradeable":true,"is_patchable":false,"is_pinnable":false,"representations":[{{"dependency":{{"package_name":"pkg{n}","package_version":"1.{minor}.0"}}}}]}}]"#,
        id = uuid_of(org.tag ^ 0x155e, i),
        n = r % 500,
        key = 10_000 + (r >> 12) % 90_000,
        status = if resolved { "resolved" } else { "open" },
        created = ts(created),
        updated = ts(created + 86_400),
        minor = r % 20,
    );
    if resolved {
        let _ = write!(out, r#","resolution":{{"type":"fixed","resolved_at":"{}","details":"Upgraded"}}"#, ts(created + 86_400));
    }
    let _ = write!(
        out,
        r#"}},"relationships":{{"organization":{{"data":{{"id":{org},"type":"organization"}}}},"scan_item":{{"data":{{"id":"{project}","type":"project"}}}}}}}}"#,
        org = json_str(org_id),
        project = uuid_of(org.tag, i % org.projects.max(1)),
    );
}

/// v1 members: a bare array, no paging.
fn members(org: &Org) -> Reply {
    let members: Vec<Value> = (0..org.members)
        .map(|i| {
            let name = format!("Member {i}");
            let role = if i == 0 { "admin" } else { "collaborator" };
            json!({"id": uuid_of(org.tag ^ 0x3e3b, i), "name": name, "username": format!("member{i}"), "email": format!("member{i}@example.com"), "role": role})
        })
        .collect();
    Reply::json(200, &Value::Array(members))
}
