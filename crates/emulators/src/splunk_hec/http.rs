//! The HTTP face of the HEC emulator. One handler routes every request so that unknown paths and
//! methods get Splunk's JSON answer too, and so that the delay applies to every response.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State as AxumState};
use axum::http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, SERVER, VARY};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use rand::Rng;
use serde::Deserialize;

use super::parse::{self, Batch, Invalid};
use super::{HecFaults, Shared};
use crate::net::{Conn, gunzip};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A HEC answer: `{"text","code"}` plus what some codes carry.
struct Reply {
    code: u16,
    event_number: Option<usize>,
    ack_id: Option<u64>,
    /// The ack endpoint's body, which is not a `{"text","code"}` one.
    raw: Option<String>,
}

impl Reply {
    fn code(code: u16) -> Reply {
        Reply { code, event_number: None, ack_id: None, raw: None }
    }

    fn status(&self) -> StatusCode {
        let status = match self.code {
            0 | 17 => 200,
            2 | 3 => 401,
            1 | 4 => 403,
            8 => 500,
            9 | 18..=20 => 503,
            404 => 404,
            _ => 400,
        };
        StatusCode::from_u16(status).expect("valid status")
    }

    fn text(&self) -> &'static str {
        match self.code {
            0 => "Success",
            1 => "Token disabled",
            2 => "Token is required",
            3 => "Invalid authorization",
            4 | 21 => "Invalid token",
            5 => "No data",
            6 => "Invalid data format",
            7 => "Incorrect index",
            8 => "Internal server error",
            9 => "Server is busy",
            10 => "Data channel is missing",
            11 => "Invalid data channel",
            12 => "Event field is required",
            13 => "Event field cannot be blank",
            14 => "ACK is disabled",
            15 => "Error in handling indexed fields",
            16 => "Query string authorization is not enabled",
            17 => "HEC is healthy",
            18 => "HEC is unhealthy, queues are full",
            19 => "HEC is unhealthy, ack service unavailable",
            20 => "HEC is unhealthy, queues are full, ack service unavailable",
            22 => "Token disabled",
            _ => "The requested URL was not found on this server.",
        }
    }

    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self.raw {
            Some(raw) => raw,
            None => {
                let mut body = format!(r#"{{"text":"{}","code":{}"#, self.text(), self.code);
                if let Some(k) = self.event_number {
                    body.push_str(&format!(r#","invalid-event-number":{k}"#));
                }
                if let Some(id) = self.ack_id {
                    body.push_str(&format!(r#","ackId":{id}"#));
                }
                body.push('}');
                body
            }
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
        headers.insert(SERVER, HeaderValue::from_static("Splunkd"));
        headers.insert(VARY, HeaderValue::from_static("Authorization"));
        headers.insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
        headers.insert("X-Frame-Options", HeaderValue::from_static("SAMEORIGIN"));
        response
    }
}

impl From<Invalid> for Reply {
    fn from(invalid: Invalid) -> Reply {
        Reply { event_number: Some(invalid.event_number), ..Reply::code(invalid.code) }
    }
}

enum Route {
    Event,
    Ack,
    Health,
    NotFound,
}

fn route(method: &Method, path: &str) -> Route {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    match (method, path) {
        (&Method::POST, "/services/collector" | "/services/collector/event" | "/services/collector/event/1.0") => Route::Event,
        (&Method::POST, "/services/collector/ack" | "/services/collector/ack/1.0") => Route::Ack,
        (&Method::GET, "/services/collector/health" | "/services/collector/health/1.0") => Route::Health,
        _ => Route::NotFound,
    }
}

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, ConnectInfo(conn): ConnectInfo<Conn>, req: Request) -> Response {
    let faults = shared.faults();
    let (parts, body) = req.into_parts();
    let reply = match route(&parts.method, parts.uri.path()) {
        Route::Event => {
            shared.requests.fetch_add(1, Ordering::Relaxed);
            event(&shared, &faults, &conn, &parts, body).await
        }
        Route::Ack => ack(&shared, &parts, body).await,
        Route::Health => health(&shared, &faults, &parts),
        Route::NotFound => Reply::code(404),
    };
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    reply.into_response()
}

fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn authenticate(shared: &Shared, parts: &Parts) -> Result<(), Reply> {
    let Some(header) = parts.headers.get(AUTHORIZATION) else {
        // Tokens in the query string are off unless enabled on the token, which this one is not.
        let code = if query_param(parts, "token").is_some() { 16 } else { 2 };
        return Err(Reply::code(code));
    };
    match header.to_str().ok().and_then(|h| h.strip_prefix("Splunk ")) {
        None => Err(Reply::code(3)),
        Some(token) if token.trim() == shared.config.token => Ok(()),
        Some(_) => Err(Reply::code(4)),
    }
}

/// The request's channel, from `X-Splunk-Request-Channel` or `?channel=`: codes 10 and 11 when
/// it is absent or not a GUID.
fn channel(parts: &Parts) -> Result<String, Reply> {
    let header = parts.headers.get("X-Splunk-Request-Channel").map(|v| v.to_str().unwrap_or_default().to_string());
    let Some(channel) = header.or_else(|| query_param(parts, "channel")) else { return Err(Reply::code(10)) };
    if channel.len() == 36 && uuid::Uuid::try_parse(&channel).is_ok() { Ok(channel) } else { Err(Reply::code(11)) }
}

/// The body, gunzipped if so encoded. `None` when it cannot be read or decoded.
async fn read_body(parts: &Parts, body: Body) -> Option<Vec<u8>> {
    let bytes = axum::body::to_bytes(body, usize::MAX).await.ok()?;
    let gzip = parts.headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if gzip { gunzip(&bytes).ok() } else { Some(bytes.to_vec()) }
}

fn now_epoch_seconds() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

async fn event(shared: &Shared, faults: &HecFaults, conn: &Conn, parts: &Parts, body: Body) -> Reply {
    if let Err(reply) = authenticate(shared, parts) {
        return reply;
    }
    let received = now_epoch_seconds();
    let channel = if shared.config.ack { Some(channel(parts)) } else { None };
    // Everything is validated before the lock; only the verdict is applied under it.
    let body = read_body(parts, body).await;
    let batch: Result<Batch, Reply> = match body {
        None => Err(Invalid { code: 6, event_number: 0 }.into()),
        Some(bytes) if bytes.trim_ascii().is_empty() => Err(Reply::code(5)),
        // Not parsed: the channel error is answered first.
        Some(_) if matches!(channel, Some(Err(_))) => Err(Reply::code(5)),
        Some(bytes) => Ok(parse::parse(&bytes, &shared.config.allowed_indexes, received)),
    };

    let mut st = shared.state();
    let draw: f64 = st.rng.random();
    if draw < faults.reset_rate {
        conn.reset();
        return Reply::code(8); // never sent
    }
    if faults.unhealthy || draw < faults.reset_rate + faults.busy_rate {
        return Reply::code(9);
    }
    if draw < faults.reset_rate + faults.busy_rate + faults.error_rate {
        return Reply::code(8);
    }
    let channel = match channel {
        Some(Err(reply)) => return reply,
        Some(Ok(channel)) => Some(channel),
        None => None,
    };
    let batch = match batch {
        Err(reply) => return reply,
        Ok(batch) => batch,
    };
    // HEC is not transactional: what precedes the first invalid envelope stays indexed.
    st.events.extend(batch.valid);
    if let Some(invalid) = batch.invalid {
        return invalid.into();
    }
    let Some(channel) = channel else { return Reply::code(0) };
    let lost = faults.lose_acks_rate > 0.0 && st.rng.random::<f64>() < faults.lose_acks_rate;
    let ready = (!lost).then(|| Instant::now() + shared.config.ack_delay);
    let acks = st.channels.entry(channel).or_default();
    let id = acks.next_ack;
    acks.next_ack += 1;
    acks.pending.insert(id, ready);
    Reply { ack_id: Some(id), ..Reply::code(0) }
}

#[derive(Deserialize)]
struct AckQuery {
    acks: Vec<u64>,
}

async fn ack(shared: &Shared, parts: &Parts, body: Body) -> Reply {
    if let Err(reply) = authenticate(shared, parts) {
        return reply;
    }
    if !shared.config.ack {
        return Reply::code(14);
    }
    let channel = match channel(parts) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let query = match read_body(parts, body).await {
        None => return Reply::code(6),
        Some(bytes) if bytes.trim_ascii().is_empty() => return Reply::code(5),
        Some(bytes) => match serde_json::from_slice::<AckQuery>(&bytes) {
            Ok(q) => q,
            Err(_) => return Reply::code(6),
        },
    };
    let now = Instant::now();
    let mut st = shared.state();
    let mut pending = st.channels.get_mut(&channel);
    let mut body = String::from(r#"{"acks":{"#);
    for (i, id) in query.acks.iter().enumerate() {
        // Reported true once, then forgotten, as Splunk does.
        let done = pending.as_mut().is_some_and(|c| {
            let ready = c.pending.get(id).copied().flatten().is_some_and(|at| at <= now);
            if ready {
                c.pending.remove(id);
            }
            ready
        });
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(r#""{id}":{done}"#));
    }
    body.push_str("}}");
    Reply { raw: Some(body), ..Reply::code(0) }
}

fn health(shared: &Shared, faults: &HecFaults, parts: &Parts) -> Reply {
    // The health check needs no token, but a wrong one is reported.
    if let Some(header) = parts.headers.get(AUTHORIZATION) {
        let token = header.to_str().ok().and_then(|h| h.strip_prefix("Splunk ")).map(str::trim);
        if token != Some(shared.config.token.as_str()) {
            return Reply::code(21);
        }
    }
    if faults.unhealthy { Reply::code(18) } else { Reply::code(17) }
}
