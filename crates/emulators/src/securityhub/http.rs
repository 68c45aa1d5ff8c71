//! The emulator's state and endpoint: known access keys, findings per region, the SigV4 header
//! checks, GetFindings and AWS's JSON error form.

use std::collections::{HashMap, HashSet};

use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{NaiveDateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::Options;
use super::findings::{self, asff_time, time_of};
use crate::vendor::{Api, Fault, Limiter, Reply, Request};

pub struct State {
    keys: HashSet<String>,
    /// By region, in insertion order.
    findings: HashMap<String, Vec<Value>>,
    limiter: Limiter,
}

/// AWS's error form: `x-amzn-ErrorType` and `{"Code","Message"}` (and the lower-case `message`
/// some SDK paths read).
pub fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::raw(status, "application/json", json!({"Code": code, "Message": message, "message": message}).to_string())
        .header("x-amzn-errortype", code)
}

fn invalid(message: &str) -> Reply {
    error(400, "InvalidInputException", message)
}

/// The access key id and region of a well-formed `AWS4-HMAC-SHA256` header for `securityhub`.
fn credential_scope(req: &Request) -> Result<(String, String), Reply> {
    let Some(header) = req.header(AUTHORIZATION.as_str()) else {
        return Err(error(403, "MissingAuthenticationTokenException", "Missing Authentication Token"));
    };
    let incomplete =
        |what: &str| error(403, "IncompleteSignatureException", &format!("Authorization header requires {what}. Authorization={header}"));
    let Some(rest) = header.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(incomplete("the AWS4-HMAC-SHA256 algorithm"));
    };
    let parts: HashMap<&str, &str> = rest.split(',').filter_map(|p| p.trim().split_once('=')).collect();
    let Some(credential) = parts.get("Credential") else { return Err(incomplete("'Credential' parameter")) };
    if parts.get("SignedHeaders").is_none_or(|h| !h.split(';').any(|h| h == "host")) {
        return Err(incomplete("'SignedHeaders' parameter (including host)"));
    }
    if parts.get("Signature").is_none_or(|s| s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(incomplete("'Signature' parameter"));
    }
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = scope.as_slice() else {
        return Err(incomplete("a Credential of the form <key>/<date>/<region>/<service>/aws4_request"));
    };
    if *terminator != "aws4_request" || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || region.is_empty() {
        return Err(incomplete("a Credential of the form <key>/<date>/<region>/<service>/aws4_request"));
    }
    if *service != "securityhub" {
        return Err(error(
            403,
            "InvalidSignatureException",
            &format!("Credential should be scoped to correct service: 'securityhub'. Credential={credential}"),
        ));
    }
    let Some(amz_date) = req.header("x-amz-date") else {
        return Err(error(
            403,
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let Ok(signed_at) = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ") else {
        return Err(error(403, "IncompleteSignatureException", &format!("X-Amz-Date must be in ISO8601 basic format: {amz_date}")));
    };
    if !amz_date.starts_with(date) {
        return Err(error(
            403,
            "SignatureDoesNotMatch",
            &format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}'",
                &amz_date[..8]
            ),
        ));
    }
    if (Utc::now().naive_utc() - signed_at).abs() > TimeDelta::minutes(15) {
        return Err(error(
            403,
            "InvalidSignatureException",
            &format!("Signature expired: {amz_date} is now earlier or later than 15 minutes from the current time."),
        ));
    }
    Ok((key.to_string(), region.to_string()))
}

fn next_token(offset: usize) -> String {
    STANDARD.encode(json!({"offset": offset, "v": 1}).to_string())
}

fn parse_next_token(token: &str) -> Option<usize> {
    let text = String::from_utf8(STANDARD.decode(token).ok()?).ok()?;
    serde_json::from_str::<Value>(&text).ok()?.get("offset")?.as_u64().map(|o| o as usize)
}

impl State {
    pub fn new(options: Options) -> State {
        State {
            keys: HashSet::new(),
            findings: HashMap::new(),
            limiter: Limiter::new(options.rate_limit_per_minute, options.enforce_rate_limit),
        }
    }

    pub fn add_key(&mut self, key: &str) {
        self.keys.insert(key.to_string());
    }

    pub fn region(&mut self, region: &str) -> &mut Vec<Value> {
        self.findings.entry(region.to_string()).or_default()
    }

    pub fn add_findings(&mut self, region: &str, batch: Vec<Value>) {
        let stored = self.region(region);
        for finding in batch {
            let id = finding.get("Id").and_then(Value::as_str).expect("findings need an Id").to_string();
            assert!(time_of(&finding, "UpdatedAt").is_some(), "findings need an RFC 3339 UpdatedAt");
            match stored.iter_mut().find(|f| f["Id"] == id.as_str()) {
                Some(old) => *old = finding,
                None => stored.push(finding),
            }
        }
    }

    pub fn update_finding(&mut self, region: &str, id: &str, changes: Value) -> bool {
        let Some(finding) = self.region(region).iter_mut().find(|f| f["Id"] == id) else { return false };
        finding["UpdatedAt"] = asff_time(Utc::now()).into();
        if let (Some(finding), Value::Object(changes)) = (finding.as_object_mut(), changes) {
            finding.extend(changes);
        }
        true
    }

    fn get_findings(&self, req: &Request, region: &str) -> Result<Reply, Reply> {
        let body =
            if req.body.is_empty() { json!({}) } else { req.json_body().ok_or_else(|| invalid("The request body is not valid JSON."))? };
        let Some(body) = body.as_object() else { return Err(invalid("The request body must be a JSON object.")) };
        let max = match body.get("MaxResults") {
            None | Some(Value::Null) => 100,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| invalid(&format!("1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100")))?
                as usize,
        };
        let empty = serde_json::Map::new();
        let filters = match body.get("Filters") {
            None | Some(Value::Null) => &empty,
            Some(f) => {
                findings::validate(f).map_err(|m| invalid(&m))?;
                f.as_object().expect("validated")
            }
        };
        let start = match body.get("NextToken").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            Some(token) => parse_next_token(token).ok_or_else(|| invalid("The NextToken is not valid."))?,
            None => 0,
        };
        let now = Utc::now();
        let mut selected: Vec<&Value> =
            self.findings.get(region).map(|all| all.iter().filter(|f| findings::matches(filters, f, now)).collect()).unwrap_or_default();
        let criteria = body
            .get("SortCriteria")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| vec![json!({"Field": "UpdatedAt", "SortOrder": "desc"})]);
        for criterion in criteria.iter().rev() {
            let field = criterion.get("Field").and_then(Value::as_str).unwrap_or("UpdatedAt").to_string();
            let descending = match criterion.get("SortOrder").and_then(Value::as_str).unwrap_or("asc") {
                "asc" => false,
                "desc" => true,
                other => return Err(invalid(&format!("SortOrder must be asc or desc, not {other}"))),
            };
            selected.sort_by(|a, b| {
                let order = if field.ends_with("At") {
                    time_of(a, &field).cmp(&time_of(b, &field))
                } else {
                    a.get(&field).map(Value::to_string).cmp(&b.get(&field).map(Value::to_string))
                };
                if descending { order.reverse() } else { order }
            });
        }
        let start = start.min(selected.len());
        let end = (start + max).min(selected.len());
        let page: Vec<Value> = selected[start..end].iter().map(|f| (*f).clone()).collect();
        let mut out = json!({"Findings": page});
        if end < selected.len() {
            out["NextToken"] = next_token(end).into();
        }
        Ok(Reply::json(200, &out))
    }
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        let header = req.header(AUTHORIZATION.as_str())?;
        let credential = header.split("Credential=").nth(1)?;
        Some(credential.split('/').next()?.to_string())
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        let (key, region) = match credential_scope(req) {
            Ok(scope) => scope,
            Err(reply) => return reply,
        };
        if !self.keys.contains(&key) {
            return error(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
        }
        if !self.limiter.admit(&key).allowed {
            return error(429, "LimitExceededException", "Rate exceeded");
        }
        if req.path != "/findings" || req.method != Method::POST {
            return error(404, "ResourceNotFoundException", &format!("No operation at {} {}", req.method, req.path));
        }
        if !self.findings.contains_key(&region) {
            return error(401, "InvalidAccessException", &format!("Account is not subscribed to AWS Security Hub in {region}"));
        }
        self.get_findings(req, &region).unwrap_or_else(|reply| reply)
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(_) => error(429, "LimitExceededException", "Rate exceeded"),
            Fault::Status(status) => error(status, "InternalException", "Internal service error"),
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }

    fn finish(&mut self, _credential: Option<&str>, reply: &mut Reply) {
        reply.set("x-amzn-requestid", uuid::Uuid::new_v4());
    }
}
