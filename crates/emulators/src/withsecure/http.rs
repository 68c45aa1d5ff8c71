//! The HTTP face of the emulator: one handler that records each request, applies delay and
//! injected faults, then routes by path.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::query::{EventQuery, first, organizations_page};
use super::state::{Fault, RecordedRequest, State, Token};

type Shared = Arc<Mutex<State>>;

pub fn router(state: Shared) -> Router {
    Router::new().fallback(handle).with_state(state)
}

struct Request {
    method: Method,
    path: String,
    headers: HeaderMap,
    params: Vec<(String, String)>,
    body_params: Vec<(String, String)>,
}

async fn handle(AxumState(state): AxumState<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let delay = state.lock().expect("poisoned").delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let body_params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let params = if method == Method::POST { body_params.clone() } else { query };
    let req = Request { method, path: uri.path().to_string(), headers, params, body_params };

    let mut st = state.lock().expect("poisoned");
    let (client_id, status, mut response) = route(&mut st, &req);
    let transaction = format!("0000-{:016x}", st.requests.len() as u64 ^ 0x9e37_79b9_7f4a_7c15);
    st.requests.push(RecordedRequest {
        at: Instant::now(),
        path: req.path.clone(),
        client_id,
        form: req.params.clone(),
        user_agent: req.headers.get("user-agent").and_then(|v| v.to_str().ok()).map(str::to_string),
        status: status.as_u16(),
    });
    response.headers_mut().insert("X-Transaction", HeaderValue::from_str(&transaction).expect("ascii"));
    response
}

/// The flat error envelope of the Elements API.
fn error(status: StatusCode, sub: u32, message: &str) -> Response {
    let code = status.as_u16() as u32 * 1000 + sub;
    (status, axum::Json(json!({"message": message, "code": code, "transactionId": "0000-emulated"}))).into_response()
}

fn route(st: &mut State, req: &Request) -> (Option<String>, StatusCode, Response) {
    let (client, response) = route_inner(st, req);
    let status = response.status();
    (client, status, response)
}

fn route_inner(st: &mut State, req: &Request) -> (Option<String>, Response) {
    if !req.headers.contains_key("user-agent") {
        return (None, error(StatusCode::BAD_REQUEST, 1, "User-Agent header is required."));
    }
    if let Some(fault) = st.faults.pop_front() {
        let client = identify(st, req);
        return (client, match fault {
            Fault::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error(status, 0, "Internal error (injected).")
            }
            Fault::Throttle(secs) => throttled(secs),
        });
    }
    if req.path == "/as/token.oauth2" {
        return token(st, req);
    }
    let bearer = req.headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let client_id = match bearer.map(|t| st.token_client(t)) {
        Some(Ok(c)) => c,
        Some(Err(c)) => return (c, error(StatusCode::UNAUTHORIZED, 0, "Unauthorized.")),
        None => return (None, error(StatusCode::UNAUTHORIZED, 0, "Unauthorized.")),
    };
    if let Some(secs) = st.over_limit(&client_id) {
        return (Some(client_id), throttled(secs));
    }
    let client = &st.clients[&client_id];
    let response = match (req.method.as_str(), req.path.as_str()) {
        ("POST" | "GET", "/security-events/v1/security-events") => {
            let org = first(&req.params, "organizationId").unwrap_or_else(|| client.own_org.clone());
            if !client.visible.contains(&org) {
                error(StatusCode::FORBIDDEN, 0, "Forbidden: organization not accessible with these credentials.")
            } else {
                match EventQuery::parse(&req.params) {
                    Ok(q) => axum::Json(q.page(st.events.get(&org).map(Vec::as_slice).unwrap_or_default())).into_response(),
                    Err(msg) => error(StatusCode::BAD_REQUEST, 0, &msg),
                }
            }
        }
        ("GET", "/organizations/v1/organizations") => {
            let wanted = first(&req.params, "organizationId");
            let orgs: Vec<Value> = client
                .visible
                .iter()
                .filter(|id| wanted.as_ref().is_none_or(|w| w == *id))
                .filter_map(|id| st.orgs.get(id).map(|o| json!({"id": id, "name": o.name, "type": o.kind})))
                .collect();
            match organizations_page(orgs, &req.params) {
                Ok(body) => axum::Json(body).into_response(),
                Err(msg) => error(StatusCode::BAD_REQUEST, 0, &msg),
            }
        }
        ("GET", "/whoami/v1/whoami") => axum::Json(json!({"clientId": client_id, "organizationId": client.own_org})).into_response(),
        _ => error(StatusCode::NOT_FOUND, 0, "Not found."),
    };
    (Some(client_id), response)
}

fn throttled(secs: u64) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, 0, "Too many requests.");
    r.headers_mut().insert("Retry-After", HeaderValue::from(secs));
    r
}

/// Who sent a request, for the record: Basic credentials or a known token.
fn identify(st: &State, req: &Request) -> Option<String> {
    let auth = req.headers.get("authorization")?.to_str().ok()?;
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return st.tokens.get(token).map(|t| t.client_id.clone());
    }
    basic(auth).map(|(id, _)| id)
}

fn basic(header: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(header.strip_prefix("Basic ")?).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, axum::Json(json!({"error": error, "error_description": description}))).into_response()
}

fn token(st: &mut State, req: &Request) -> (Option<String>, Response) {
    if req.method != Method::POST {
        return (None, error(StatusCode::METHOD_NOT_ALLOWED, 0, "Method not allowed."));
    }
    let credentials = req.headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(basic);
    if req.body_params.iter().any(|(k, _)| k == "client_id" || k == "client_secret") {
        return (None, oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Client credentials must be sent with HTTP Basic authentication."));
    }
    let Some((id, secret)) = credentials else {
        return (None, oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed."));
    };
    if st.clients.get(&id).is_none_or(|c| c.secret != secret) {
        return (Some(id), oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed."));
    }
    if let Some(secs) = st.over_limit(&id) {
        return (Some(id), throttled(secs));
    }
    if first(&req.body_params, "grant_type").as_deref() != Some("client_credentials") {
        return (Some(id), oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Only client_credentials is supported."));
    }
    let scope = first(&req.body_params, "scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "connect.api.read") {
        return (Some(id), oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "The requested scope is invalid."));
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let ttl = st.options.token_ttl;
    st.tokens.insert(token.clone(), Token { client_id: id.clone(), expires: Instant::now() + ttl, generation: st.token_generation });
    (Some(id), axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs()})).into_response())
}
