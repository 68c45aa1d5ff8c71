//! The HTTP face of the Wazuh emulator, in the order the API's middlewares and connexion check a
//! request: the global rate limit (every request, unknown paths and logins included), the route
//! (404, 405), the login block and Basic credentials or the bearer token (403, 401), the
//! parameters (400), then the controller. One handler serves every path so that all answers get
//! the API's headers and the injected delay.

use std::cmp::Ordering as CmpOrdering;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State as AxumState};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use rand::Rng;
use serde_json::{Map, Value, json};

use super::params::{self, Params};
use super::query::{self, Query, Search, Sort, Sql, WazuhError};
use super::rows::{self, NODE_NAME, Stored};
use super::{Shared, WazuhFaults};
use crate::net::Conn;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

const JSON: &str = "application/json";
const PROBLEM: &str = "application/problem+json; charset=utf-8";
const MINUTE: Duration = Duration::from_secs(60);

/// An answer before rendering.
struct Reply {
    status: u16,
    body: Content,
    /// The deprecated `GET` login's extra headers.
    deprecated: bool,
}

enum Content {
    Json(Value),
    Problem(Value),
    Text(String),
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply { status: 200, body: Content::Json(body), deprecated: false }
    }

    fn problem(status: u16, body: Value) -> Reply {
        Reply { status, body: Content::Problem(body), deprecated: false }
    }

    /// `{"title","detail"}`, connexion's problems.
    fn simple(status: u16, title: &str, detail: &str) -> Reply {
        Reply::problem(status, json!({"title": title, "detail": detail}))
    }

    fn unauthorized(detail: &str) -> Reply {
        Reply::simple(401, "Unauthorized", detail)
    }

    fn bad_request(detail: String) -> Reply {
        Reply::simple(400, "Bad Request", &detail)
    }

    /// A framework error raised through the distributed API: 400 with the node's error.
    fn framework(e: &WazuhError) -> Reply {
        let mut body = Map::new();
        body.insert("title".into(), "Bad Request".into());
        body.insert("detail".into(), e.message.clone().into());
        if let Some(r) = e.remediation {
            body.insert("remediation".into(), r.into());
        }
        body.insert("dapi_errors".into(), json!({NODE_NAME: {"error": e.message}}));
        body.insert("error".into(), e.code.into());
        Reply::problem(400, Value::Object(body))
    }

    /// What an unexpected exception in a controller gives.
    fn internal() -> Reply {
        Reply::problem(
            500,
            json!({
                "title": "Wazuh Internal Error",
                "detail": "Wazuh Internal Error",
                "remediation": "Please, check `WAZUH_HOME/logs/ossec.log`, `WAZUH_HOME/logs/cluster.log` and `WAZUH_HOME/logs/api.log` to get more information about the error",
                "dapi_errors": {NODE_NAME: {"error": "Wazuh Internal Error. See log for more detail"}},
                "error": 1000
            }),
        )
    }

    fn too_many() -> Reply {
        Reply::problem(
            429,
            json!({
                "title": "Too Many Requests",
                "detail": "Maximum number of requests per minute reached",
                "remediation": "This limit can be changed in api.yaml file. More information here: https://documentation.wazuh.com/4.14/user-manual/api/configuration.html#configuration-file",
                "error": 6001
            }),
        )
    }

    fn into_response(self, pretty: bool) -> Response {
        let (content_type, text) = match self.body {
            Content::Json(v) => (JSON, python_json(&v, pretty)),
            Content::Problem(v) => (PROBLEM, python_json(&v, pretty)),
            // Starlette adds the charset to text types.
            Content::Text(t) => ("text/plain; charset=utf-8", t),
        };
        let mut response = Response::new(Body::from(text));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        // The `secure` package's headers, set by the API's SecureHeadersMiddleware.
        for (name, value) in [
            ("server", "Wazuh"),
            ("strict-transport-security", "max-age=63072000; includeSubdomains"),
            ("x-frame-options", "DENY"),
            ("x-xss-protection", "0"),
            ("x-content-type-options", "nosniff"),
            ("content-security-policy", "none"),
            ("referrer-policy", "no-referrer, strict-origin-when-cross-origin"),
            ("cache-control", "no-store"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        if self.deprecated {
            headers.insert("deprecated", HeaderValue::from_static("true"));
            headers.insert(
                "link",
                HeaderValue::from_static(
                    "<https://documentation.wazuh.com/4.14.7/user-manual/api/reference.html#operation/api.controllers.security_controller.login_user>; rel=\"Deprecated\"",
                ),
            );
        }
        response
    }
}

/// Python's `json.dumps`: `", "` and `": "` separators (pretty: indent 3), non-ASCII escaped.
fn python_json(value: &Value, pretty: bool) -> String {
    let mut out = Vec::new();
    let written = if pretty {
        let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter { pretty: true, indent: 0, has_value: false });
        serde::Serialize::serialize(value, &mut ser)
    } else {
        let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter { pretty: false, indent: 0, has_value: false });
        serde::Serialize::serialize(value, &mut ser)
    };
    written.expect("a JSON value serializes");
    String::from_utf8(out).expect("the formatter writes ASCII")
}

struct PyFormatter {
    pretty: bool,
    indent: usize,
    has_value: bool,
}

impl PyFormatter {
    fn newline<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.indent {
            w.write_all(b"   ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, c: &[u8]) -> io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        w.write_all(c)
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, c: &[u8]) -> io::Result<()> {
        self.indent -= 1;
        if self.pretty && self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(c)
    }

    fn item<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match (first, self.pretty) {
            (true, false) => Ok(()),
            (false, false) => w.write_all(b", "),
            (first, true) => {
                if !first {
                    w.write_all(b",")?;
                }
                self.newline(w)
            }
        }
    }
}

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() && c != '\x7f' {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

enum Route {
    Info,
    Login { deprecated: bool },
    Agents,
    Syscheck(String),
    Packages(String),
    Os(String),
    MethodNotAllowed,
    NotFound,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(method: &Method, path: &str) -> Route {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    // Starlette answers HEAD wherever GET is served.
    let get = method == Method::GET || method == Method::HEAD;
    let (route, allowed) = match segments.as_slice() {
        [""] => (Route::Info, get),
        ["security", "user", "authenticate"] => (Route::Login { deprecated: get }, get || method == Method::POST),
        ["agents"] => (Route::Agents, get),
        ["syscheck", id] if !id.is_empty() => (Route::Syscheck(percent_decode(id)), get),
        ["syscollector", id, "packages"] if !id.is_empty() => (Route::Packages(percent_decode(id)), get),
        ["syscollector", id, "os"] if !id.is_empty() => (Route::Os(percent_decode(id)), get),
        _ => return Route::NotFound,
    };
    if allowed { route } else { Route::MethodNotAllowed }
}

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, ConnectInfo(conn): ConnectInfo<Conn>, req: Request) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let faults = shared.faults();
    let (parts, _body) = req.into_parts();
    let query: Vec<(String, String)> =
        parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let reply = dispatch(&shared, &faults, &conn, &parts, &query);
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    // Errors are pretty only for `pretty=true` verbatim; answers for any spelling of true.
    let pretty = match reply.body {
        Content::Json(_) => query.iter().rev().find(|(k, _)| k == "pretty").is_some_and(|(_, v)| v.eq_ignore_ascii_case("true")),
        _ => query.iter().find(|(k, _)| k == "pretty").is_some_and(|(_, v)| v == "true"),
    };
    reply.into_response(pretty)
}

fn dispatch(shared: &Shared, faults: &WazuhFaults, conn: &Conn, parts: &Parts, query: &[(String, String)]) -> Reply {
    if !admit(shared) {
        shared.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Reply::too_many();
    }
    let route = route(&parts.method, parts.uri.path());
    let (specs, agent_id): (&[params::Spec], Option<&str>) = match &route {
        Route::NotFound => return Reply::simple(404, "Not Found", "404: Not Found"),
        Route::MethodNotAllowed => return Reply::simple(405, "Method Not Allowed", "405: Method Not Allowed"),
        Route::Login { deprecated } => {
            let mut reply = login(shared, faults, conn, parts, query);
            reply.deprecated = *deprecated && reply.status == 200;
            return reply;
        }
        Route::Info => (params::INFO, None),
        Route::Agents => (params::AGENTS, None),
        Route::Syscheck(id) => (params::SYSCHECK, Some(id.as_str())),
        Route::Packages(id) => (params::PACKAGES, Some(id.as_str())),
        Route::Os(id) => (params::OS, Some(id.as_str())),
    };
    if let Err(reply) = bearer(shared, parts) {
        return reply;
    }
    let params = match params::validate(specs, query, agent_id) {
        Ok(p) => p,
        Err(detail) => return Reply::bad_request(detail),
    };
    if let Some(reply) = inject(shared, faults, conn) {
        return reply;
    }
    let st = shared.state();
    let now = Utc::now().timestamp();
    match route {
        Route::Info => info(),
        Route::Agents => agents(&st.agents, &params, now),
        Route::Syscheck(id) => syscheck(st.find(&id), &id, &params, now),
        Route::Packages(id) => packages(st.find(&id), &id, &params, now),
        Route::Os(id) => os(st.find(&id), &id, &params, now),
        Route::Login { .. } | Route::NotFound | Route::MethodNotAllowed => unreachable!("answered above"),
    }
}

/// The API's `check_rate_limit`: a window opens with the first request and lasts 60 s; the
/// request that opens the next window counts as 0, as the API resets its counter to 0.
fn admit(shared: &Shared) -> bool {
    let max = u64::from(shared.config.max_requests_per_minute);
    if max == 0 {
        return true;
    }
    let now = Instant::now();
    let mut st = shared.state();
    let count = match st.window {
        Some((start, count)) if now.duration_since(start) <= MINUTE => count + 1,
        Some(_) => 0,
        None => 1,
    };
    let start = match st.window {
        Some((start, _)) if count > 0 => start,
        _ => now,
    };
    st.window = Some((start, count));
    count <= max
}

fn inject(shared: &Shared, faults: &WazuhFaults, conn: &Conn) -> Option<Reply> {
    if faults.error_rate <= 0.0 && faults.reset_rate <= 0.0 {
        return None;
    }
    let draw: f64 = shared.state().rng.random();
    if draw < faults.reset_rate {
        conn.reset();
        return Some(Reply::internal()); // never sent
    }
    (draw < faults.reset_rate + faults.error_rate).then(Reply::internal)
}

/// connexion's bearer check, then the API's `decode_token`.
fn bearer(shared: &Shared, parts: &Parts) -> Result<(), Reply> {
    let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut split = header.trim_start().splitn(2, char::is_whitespace);
    let (kind, token) = (split.next().unwrap_or_default(), split.next().map(str::trim_start).unwrap_or_default());
    if !kind.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Reply::unauthorized("No authorization token provided"));
    }
    let valid = shared.state().tokens.get(token).is_some_and(|expiry| Instant::now() < *expiry);
    if valid { Ok(()) } else { Err(Reply::unauthorized("Invalid token")) }
}

fn basic(parts: &Parts) -> Option<(String, String)> {
    let header = parts.headers.get(AUTHORIZATION)?.to_str().ok()?.trim_start();
    let (kind, value) = header.split_once(char::is_whitespace)?;
    if !kind.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(value.trim()).ok()?;
    // Python decodes the credentials as latin-1.
    let text: String = decoded.iter().map(|&b| char::from(b)).collect();
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn login(shared: &Shared, faults: &WazuhFaults, conn: &Conn, parts: &Parts, query: &[(String, String)]) -> Reply {
    let config = &shared.config;
    {
        let mut st = shared.state();
        // The block (and the count of failures) lapses `block_time` after the first failure.
        if let Some((first, _)) = st.failed_logins
            && first.elapsed() >= config.block_time
        {
            st.failed_logins = None;
            st.blocked = false;
        }
        if st.blocked {
            return Reply::simple(
                403,
                "Permission Denied",
                "Limit of login attempts reached. The current IP has been blocked due to a high number of login attempts",
            );
        }
        let valid = basic(parts).is_some_and(|(user, password)| user == config.user && password == config.password);
        if !valid {
            let (first, attempts) = st.failed_logins.map_or((Instant::now(), 1), |(first, n)| (first, n + 1));
            st.failed_logins = Some((first, attempts));
            if attempts >= config.max_login_attempts {
                st.blocked = true;
            }
            return Reply::unauthorized("Invalid credentials");
        }
    }
    let params = match params::validate(params::LOGIN, query, None) {
        Ok(p) => p,
        Err(detail) => return Reply::bad_request(detail),
    };
    if let Some(reply) = inject(shared, faults, conn) {
        return reply;
    }
    let token = issue_token(shared);
    if params.bool("raw") {
        Reply { status: 200, body: Content::Text(token), deprecated: false }
    } else {
        Reply::ok(json!({"data": {"token": token}, "error": 0}))
    }
}

/// A JWT with the API's header and claims. The signature is random bytes of an ES512
/// signature's length: clients never verify it, and the emulator knows its tokens by value.
fn issue_token(shared: &Shared) -> String {
    let config = &shared.config;
    let nbf = Utc::now().timestamp();
    let lifetime = config.token_lifetime.as_secs().max(1) as i64;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES512","typ":"JWT"}"#);
    let claims = json!({
        "iss": "wazuh",
        "aud": "Wazuh API REST",
        "nbf": nbf,
        "exp": nbf + lifetime,
        "sub": config.user,
        "run_as": false,
        "rbac_roles": [1],
        "rbac_mode": "white"
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut signature = [0u8; 132];
    rand::rng().fill(&mut signature[..]);
    let token = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(signature));
    let now = Instant::now();
    let mut st = shared.state();
    // Expired tokens answer as unknown ones do, so they need not be kept.
    st.tokens.retain(|_, expiry| *expiry > now);
    st.tokens.insert(token.clone(), now + config.token_lifetime);
    shared.tokens_issued.fetch_add(1, Ordering::Relaxed);
    token
}

fn info() -> Reply {
    Reply::ok(json!({
        "data": {
            "title": "Wazuh API REST",
            "api_version": "4.14.7",
            "revision": "rc1",
            "license_name": "GPL 2.0",
            "license_url": "https://github.com/wazuh/wazuh/blob/v4.14.7/LICENSE",
            "hostname": rows::MANAGER_HOST,
            "timestamp": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
        },
        "error": 0
    }))
}

/// `AffectedItemsWazuhResult`: the items, the failures grouped by error, and the message and
/// `error` (0 all, 1 none, 2 some) they call for.
struct Affected {
    items: Vec<Value>,
    total: usize,
    failed: Vec<(WazuhError, Vec<String>)>,
    all: &'static str,
    some: &'static str,
    none: &'static str,
}

impl Affected {
    fn new(all: &'static str, some: &'static str, none: &'static str) -> Affected {
        Affected { items: Vec::new(), total: 0, failed: Vec::new(), all, some, none }
    }

    fn fail(&mut self, error: WazuhError, id: &str) {
        match self.failed.iter_mut().find(|(e, _)| *e == error) {
            Some((_, ids)) => ids.push(id.to_string()),
            None => self.failed.push((error, vec![id.to_string()])),
        }
    }

    fn render(mut self) -> Reply {
        let failed_count: usize = self.failed.iter().map(|(_, ids)| ids.len()).sum();
        let message = match (self.total, failed_count) {
            (0, _) => self.none,
            (_, 0) => self.all,
            _ => self.some,
        };
        let error = match (self.total, failed_count) {
            (t, f) if t > 0 && f > 0 => 2,
            (0, f) if f > 0 => 1,
            _ => 0,
        };
        self.failed.sort_by_key(|(e, _)| e.code);
        let failed: Vec<Value> = self
            .failed
            .into_iter()
            .map(|(e, mut ids)| {
                ids.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => a.cmp(b),
                });
                ids.dedup();
                let mut err = Map::new();
                err.insert("code".into(), e.code.into());
                err.insert("message".into(), e.message.into());
                if let Some(r) = e.remediation {
                    err.insert("remediation".into(), r.into());
                }
                json!({"error": err, "id": ids})
            })
            .collect();
        Reply::ok(json!({
            "data": {
                "affected_items": self.items,
                "total_affected_items": self.total,
                "total_failed_items": failed_count,
                "failed_items": failed
            },
            "message": message,
            "error": error
        }))
    }
}

/// The list parameters every paged endpoint shares.
fn base_query(params: &Params) -> Query {
    Query {
        offset: params.int("offset", 0) as usize,
        limit: params.int("limit", 500) as usize,
        sort: params.str("sort").map(Sort::parse),
        search: params.str("search").map(Search::parse),
        select: params.list("select").map(<[String]>::to_vec),
        filters: Vec::new(),
        q: params.str("q").unwrap_or_default().to_string(),
        distinct: params.bool("distinct"),
    }
}

fn filter(query: &mut Query, params: &Params, param: &str, field: &str) {
    if let Some(v) = params.str(param) {
        query.filters.push((field.to_string(), vec![v.to_string()]));
    }
}

/// `unify_wazuh_version_format`: `4.4.0`, `v4.4.0` and `wazuh 4.4.0` all mean `Wazuh v4.4.0`.
fn unify_version(v: &str) -> String {
    let lower = v.to_ascii_lowercase();
    let bare = lower.strip_prefix("wazuh ").unwrap_or(&lower);
    let bare = bare.strip_prefix('v').unwrap_or(bare);
    let parts: Vec<&str> = bare.split('.').collect();
    if parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        format!("Wazuh v{bare}")
    } else {
        v.to_string()
    }
}

fn agents(agents: &std::collections::BTreeMap<u64, Stored>, params: &Params, now: i64) -> Reply {
    let mut result = Affected::new(
        "All selected agents information was returned",
        "Some agents information was not returned",
        "No agent information was returned",
    );
    let mut query = base_query(params);
    if let Some(list) = params.list("agents_list") {
        for id in list {
            let known = id.parse::<u64>().ok().and_then(|n| agents.get(&n)).is_some_and(|s| s.agent.id == *id);
            if !known {
                result.fail(WazuhError::new(1701, None), id);
            }
        }
        query.filters.push(("id".into(), list.to_vec()));
    }
    if let Some(status) = params.list("status") {
        query.filters.push(("status".into(), status.to_vec()));
    }
    if let Some(older) = params.str("older_than").filter(|v| *v != "0s") {
        let clause = format!("(lastKeepAlive>{older};status!=never_connected,dateAdd>{older};status=never_connected)");
        query.q = if query.q.is_empty() { clause } else { format!("{};{clause}", query.q) };
    }
    filter(&mut query, params, "manager", "manager");
    if let Some(v) = params.str("version") {
        query.filters.push(("version".into(), vec![unify_version(v)]));
    }
    for (param, field) in [
        ("group", "group"),
        ("node_name", "node_name"),
        ("name", "name"),
        ("ip", "ip"),
        ("registerIP", "registerIP"),
        ("group_config_status", "group_config_status"),
        ("os.version", "os.version"),
        ("os.name", "os.name"),
        ("os.platform", "os.platform"),
    ] {
        filter(&mut query, params, param, field);
    }
    let rows: Vec<Vec<Sql>> = agents.values().map(rows::agent_row).collect();
    match query::run(&rows::AGENTS, rows::AGENTS.fields, &rows, &query, now) {
        Ok(page) => {
            result.items = page.items.into_iter().map(Value::Object).collect();
            result.total = page.total;
            result.render()
        }
        Err(e) => Reply::framework(&e),
    }
}

/// The framework's wazuh-db backend refuses agents without a database file: unknown ids and
/// agents that never connected.
fn no_database(id: &str) -> Reply {
    let extra = format!("There is no database for agent {id}. Please check if the agent has connected to the manager");
    Reply::framework(&WazuhError::new(2007, Some(extra)))
}

fn syscheck(stored: Option<&Stored>, id: &str, params: &Params, now: i64) -> Reply {
    let Some(stored) = stored.filter(|s| s.has_db()) else { return no_database(id) };
    let mut result = Affected::new("FIM findings of the agent were returned", "", "No FIM information was returned");
    let mut query = base_query(params);
    for field in ["type", "md5", "sha1", "sha256", "file", "arch", "value.name", "value.type"] {
        filter(&mut query, params, field, field);
    }
    if let Some(h) = params.str("hash") {
        let clause = format!("(md5={h},sha1={h},sha256={h})");
        query.q = if query.q.is_empty() { clause } else { format!("{clause};{}", query.q) };
    }
    let allowed = if params.bool("summary") { rows::SYSCHECK_SUMMARY } else { rows::SYSCHECK.fields };
    let rows: Vec<Vec<Sql>> = stored.fim.iter().map(|f| rows::fim_row(stored, f)).collect();
    match query::run(&rows::SYSCHECK, allowed, &rows, &query, now) {
        Ok(page) => {
            result.items = page.items.into_iter().map(Value::Object).collect();
            result.total = page.total;
            result.render()
        }
        Err(e) => Reply::framework(&e),
    }
}

fn syscollector() -> Affected {
    Affected::new(
        "All specified syscollector information was returned",
        "Some syscollector information was not returned",
        "No syscollector information was returned",
    )
}

/// Syscollector answers an unknown agent with a failed item (1701) rather than an error.
fn syscollector_items(
    stored: Option<&Stored>,
    id: &str,
    table: &query::Table,
    allowed: impl Fn(&Stored) -> Vec<&'static str>,
    rows: impl Fn(&Stored) -> Vec<Vec<Sql>>,
    query: &Query,
    now: i64,
) -> Reply {
    let mut result = syscollector();
    let Some(stored) = stored else {
        result.fail(WazuhError::new(1701, None), id);
        return result.render();
    };
    if !stored.has_db() {
        return no_database(id);
    }
    match query::run(table, &allowed(stored), &rows(stored), query, now) {
        Ok(page) => {
            result.items = page
                .items
                .into_iter()
                .map(|mut item| {
                    item.insert("agent_id".into(), Value::from(id));
                    Value::Object(item)
                })
                .collect();
            result.total = page.total;
            // The merge of per-agent results sorts again with Python's comparison.
            if let Some(sort) = &query.sort
                && sort.fields.len() == 1
            {
                sort_items(&mut result.items, &sort.fields[0], sort.desc);
            }
            result.render()
        }
        Err(e) => Reply::framework(&e),
    }
}

fn sort_items(items: &mut [Value], field: &str, desc: bool) {
    let key = |v: &Value| field.split('.').try_fold(v, |v, k| v.get(k)).cloned().unwrap_or(Value::Null);
    items.sort_by(|a, b| {
        let o = match (key(a), key(b)) {
            (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(CmpOrdering::Equal),
            (Value::String(x), Value::String(y)) => x.cmp(&y),
            _ => CmpOrdering::Equal,
        };
        if desc { o.reverse() } else { o }
    });
}

fn packages(stored: Option<&Stored>, id: &str, params: &Params, now: i64) -> Reply {
    let mut query = base_query(params);
    for field in ["vendor", "name", "architecture", "format", "version"] {
        filter(&mut query, params, field, field);
    }
    let rows = |s: &Stored| s.packages.iter().map(|p| rows::package_row(s, p)).collect();
    syscollector_items(stored, id, &rows::PACKAGES, |_| rows::PACKAGES.fields.to_vec(), rows, &query, now)
}

fn os(stored: Option<&Stored>, id: &str, params: &Params, now: i64) -> Reply {
    let query = Query { limit: 500, select: params.list("select").map(<[String]>::to_vec), ..Query::default() };
    syscollector_items(stored, id, &rows::OS, rows::os_allowed, |s| vec![rows::os_row(s)], &query, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_separators_and_escapes() {
        let v = json!({"a": [1, 2], "b": {"c": "é"}, "d": [], "e": {}});
        assert_eq!(python_json(&v, false), r#"{"a": [1, 2], "b": {"c": "\u00e9"}, "d": [], "e": {}}"#);
        assert_eq!(
            python_json(&v, true),
            "{\n   \"a\": [\n      1,\n      2\n   ],\n   \"b\": {\n      \"c\": \"\\u00e9\"\n   },\n   \"d\": [],\n   \"e\": {}\n}"
        );
        assert_eq!(python_json(&json!({"x": "😀\u{7f}"}), false), r#"{"x": "\ud83d\ude00\u007f"}"#);
    }

    #[test]
    fn routes() {
        assert!(matches!(route(&Method::GET, "/"), Route::Info));
        assert!(matches!(route(&Method::GET, "/security/user/authenticate"), Route::Login { deprecated: true }));
        assert!(matches!(route(&Method::POST, "/security/user/authenticate"), Route::Login { deprecated: false }));
        assert!(matches!(route(&Method::POST, "/agents"), Route::MethodNotAllowed));
        assert!(matches!(route(&Method::GET, "/syscollector/001/os"), Route::Os(id) if id == "001"));
        assert!(matches!(route(&Method::GET, "/agents/"), Route::NotFound));
        assert_eq!(unify_version("4.4.0"), "Wazuh v4.4.0");
        assert_eq!(unify_version("wazuh v4.4.0"), "Wazuh v4.4.0");
    }
}
