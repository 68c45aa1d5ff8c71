//! The HTTP face of the emulator. One handler takes every request so that each one, rejected or
//! not, goes through the same steps: delay, injected faults, `User-Agent`, routing,
//! authentication, rate limit, then the endpoint; and each is recorded with its status.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::query::{EventQuery, OrgQuery, Params};
use super::state::{Fault, RecordedRequest, State, Token};

pub type Shared = Arc<Mutex<State>>;

/// The state stays usable after a panic elsewhere (a test's assertion, say) poisoned the lock.
pub fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn router(state: Shared) -> Router {
    Router::new().fallback(handle).with_state(state)
}

const TOKEN_PATH: &str = "/as/token.oauth2";
const EVENTS_PATH: &str = "/security-events/v1/security-events";
const ORGANIZATIONS_PATH: &str = "/organizations/v1/organizations";
const WHOAMI_PATH: &str = "/whoami/v1/whoami";
/// `Accept` value that turns security-events into counts per `count` property.
const AGGREGATION: &str = "application/vnd.withsecure.aggr+json";

struct Request {
    method: Method,
    path: String,
    headers: HeaderMap,
    /// The form body of a POST (plus its query string, if any), or the query string otherwise.
    params: Params,
    /// The form body alone: the token endpoint looks for credentials there.
    body: Params,
}

/// What an endpoint answers, before the transaction id is known.
enum Reply {
    Ok(Value),
    /// The Elements API's flat envelope: `{"message", "code": status * 1000 + sub, "transactionId"}`.
    Error {
        status: StatusCode,
        sub: u32,
        message: String,
        retry_after: Option<u64>,
    },
    /// The token endpoint's OAuth 2 envelope: `{"error", "error_description"}`.
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
}

impl Reply {
    fn error(status: StatusCode, sub: u32, message: impl Into<String>) -> Reply {
        Reply::Error { status, sub, message: message.into(), retry_after: None }
    }

    fn bad_request(message: String) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, 0, message)
    }

    fn unauthorized() -> Reply {
        Reply::error(StatusCode::UNAUTHORIZED, 0, "Unauthorized.")
    }

    fn throttled(retry_after: u64) -> Reply {
        Reply::Error { status: StatusCode::TOO_MANY_REQUESTS, sub: 0, message: "Too many requests.".into(), retry_after: Some(retry_after) }
    }

    fn oauth(status: StatusCode, error: &'static str, description: impl Into<String>) -> Reply {
        Reply::OAuth { status, error, description: description.into() }
    }

    fn status(&self) -> StatusCode {
        match self {
            Reply::Ok(_) => StatusCode::OK,
            Reply::Error { status, .. } | Reply::OAuth { status, .. } => *status,
        }
    }

    fn into_response(self, transaction: &str) -> Response {
        let mut response = match self {
            Reply::Ok(body) => axum::Json(body).into_response(),
            Reply::Error { status, sub, message, retry_after } => {
                let code = u32::from(status.as_u16()) * 1000 + sub;
                let body = json!({"message": message, "code": code, "transactionId": transaction});
                let mut r = (status, axum::Json(body)).into_response();
                if let Some(secs) = retry_after {
                    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
                }
                r
            }
            Reply::OAuth { status, error, description } => {
                (status, axum::Json(json!({"error": error, "error_description": description}))).into_response()
            }
        };
        let transaction = HeaderValue::from_str(transaction).expect("transaction ids are ASCII");
        response.headers_mut().insert("X-Transaction", transaction);
        response
    }
}

async fn handle(AxumState(state): AxumState<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let delay = lock(&state).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let form: Vec<(String, String)> =
        if method == Method::POST { form_urlencoded::parse(&body).into_owned().collect() } else { Vec::new() };
    let params = Params(form.iter().cloned().chain(query).collect());
    let req = Request { method, path: uri.path().to_string(), headers, params, body: Params(form) };

    let mut st = lock(&state);
    let (client_id, reply) = route(&mut st, &req);
    let transaction = st.next_transaction();
    st.requests.push(RecordedRequest {
        at: Instant::now(),
        path: req.path,
        client_id,
        form: req.params.0,
        user_agent: req.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
        status: reply.status().as_u16(),
    });
    drop(st);
    reply.into_response(&transaction)
}

/// Answers a request; also says which client sent it, when that can be told, for the record.
fn route(st: &mut State, req: &Request) -> (Option<String>, Reply) {
    if let Some(fault) = st.faults.pop_front() {
        let reply = match fault {
            Fault::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Reply::error(status, 0, status.canonical_reason().unwrap_or("Error").to_string() + ".")
            }
            Fault::Throttle(secs) => Reply::throttled(secs),
        };
        return (identify(st, req), reply);
    }
    if !req.headers.contains_key(USER_AGENT) {
        return (identify(st, req), Reply::error(StatusCode::BAD_REQUEST, 1, "User-Agent header is required."));
    }
    let allowed: &[Method] = match req.path.as_str() {
        TOKEN_PATH => &[Method::POST],
        EVENTS_PATH => &[Method::POST, Method::GET],
        ORGANIZATIONS_PATH | WHOAMI_PATH => &[Method::GET],
        _ => return (identify(st, req), Reply::error(StatusCode::NOT_FOUND, 0, "Not found.")),
    };
    if !allowed.contains(&req.method) {
        return (identify(st, req), Reply::error(StatusCode::METHOD_NOT_ALLOWED, 0, "Method not allowed."));
    }
    if req.path == TOKEN_PATH {
        return token(st, req);
    }
    let bearer = req.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let client_id = match bearer.map(|t| st.token_client(t.trim())) {
        Some(Ok(c)) => c,
        Some(Err(c)) => return (c, Reply::unauthorized()),
        None => return (None, Reply::unauthorized()),
    };
    if let Err(secs) = st.admit(&client_id) {
        return (Some(client_id), Reply::throttled(secs));
    }
    let reply = match req.path.as_str() {
        EVENTS_PATH => security_events(st, req, &client_id),
        ORGANIZATIONS_PATH => organizations(st, req, &client_id),
        _ => {
            let own = &st.clients[&client_id].own_org;
            Reply::Ok(json!({"clientId": client_id, "organizationId": own}))
        }
    };
    (Some(client_id), reply)
}

fn forbidden() -> Reply {
    Reply::error(StatusCode::FORBIDDEN, 0, "Forbidden: the organization is not accessible with these credentials.")
}

fn security_events(st: &State, req: &Request, client_id: &str) -> Reply {
    let client = &st.clients[client_id];
    let org = req.params.first("organizationId").unwrap_or(&client.own_org);
    if !client.visible.contains(org) {
        return forbidden();
    }
    let query = match EventQuery::parse(&req.params) {
        Ok(q) => q,
        Err(message) => return Reply::bad_request(message),
    };
    let events = st.events.get(org).map_or(&[][..], |log| &log.events);
    let accept = req.headers.get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains(AGGREGATION) {
        return match req.params.first("count") {
            Some(property) => Reply::Ok(query.aggregate(events, property)),
            None => Reply::bad_request("The count parameter is required for aggregation.".into()),
        };
    }
    Reply::Ok(query.page(events))
}

fn organizations(st: &State, req: &Request, client_id: &str) -> Reply {
    let client = &st.clients[client_id];
    let query = match OrgQuery::parse(&req.params) {
        Ok(q) => q,
        Err(message) => return Reply::bad_request(message),
    };
    if query.id.as_ref().is_some_and(|id| !client.visible.contains(id)) {
        return forbidden();
    }
    let visible = client.visible.iter().filter_map(|id| st.orgs.get(id).map(|org| (id.as_str(), org)));
    Reply::Ok(query.page(visible))
}

/// Who sent a request that is rejected before authentication, for the record: the Basic
/// credentials' client id or the client of a known token.
fn identify(st: &State, req: &Request) -> Option<String> {
    let auth = req.headers.get(AUTHORIZATION)?.to_str().ok()?;
    match auth.strip_prefix("Bearer ") {
        Some(token) => st.tokens.get(token.trim()).map(|t| t.client_id.clone()),
        None => basic(auth).map(|(id, _)| id),
    }
}

fn basic(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?.trim();
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// OAuth 2 client credentials, with the client authenticated by HTTP Basic only.
fn token(st: &mut State, req: &Request) -> (Option<String>, Reply) {
    let credentials = req.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(basic);
    let client = credentials.as_ref().map(|(id, _)| id.clone());
    // The API rejects any body parameter besides the grant and the scope.
    if let Some((key, _)) = req.body.0.iter().find(|(k, _)| k != "grant_type" && k != "scope") {
        let description = if key == "client_id" || key == "client_secret" {
            "Client credentials must be sent with HTTP Basic authentication.".to_string()
        } else {
            format!("Unexpected parameter: {key}")
        };
        return (client, Reply::oauth(StatusCode::BAD_REQUEST, "invalid_request", description));
    }
    let Some((id, secret)) = credentials else {
        return (None, Reply::oauth(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication is required."));
    };
    if st.clients.get(&id).is_none_or(|c| c.secret != secret) {
        return (Some(id), Reply::oauth(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client or client credentials."));
    }
    if let Err(secs) = st.admit(&id) {
        return (Some(id), Reply::throttled(secs));
    }
    match req.body.first("grant_type") {
        Some("client_credentials") => {}
        None => return (Some(id), Reply::oauth(StatusCode::BAD_REQUEST, "invalid_request", "Missing grant_type parameter.")),
        Some(other) => {
            let description = format!("Grant type {other} is not supported.");
            return (Some(id), Reply::oauth(StatusCode::BAD_REQUEST, "unsupported_grant_type", description));
        }
    }
    let scope = req.body.first("scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "connect.api.read") {
        let description = "The scope must include connect.api.read.";
        return (Some(id), Reply::oauth(StatusCode::BAD_REQUEST, "invalid_scope", description));
    }
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let ttl = st.options.token_ttl;
    let issued = Token { client_id: id.clone(), expires: Instant::now() + ttl, generation: st.token_generation };
    st.tokens.insert(token.clone(), issued);
    (Some(id), Reply::Ok(json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs()})))
}
