//! The HTTP face of the Elasticsearch emulator, in the order the real server checks a request:
//! body size (413, before anything is read), `Content-Type` (406), authentication (401), then the
//! route (400 "no handler found", 405 for a known path with another method).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State as AxumState};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;

use super::bulk::{self, BulkError};
use super::filter::filter_path;
use super::store::{Item, Outcome, error_object, index_not_found};
use super::{EsConfig, EsFaults, Flavor, Shared};
use crate::net::{Conn, gunzip, json_str, push_json_str};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// The `WWW-Authenticate` challenges of Elasticsearch 8 with its default realms.
const CHALLENGES: [&str; 3] = [r#"Basic realm="security", charset="UTF-8""#, r#"Bearer realm="security""#, "ApiKey"];

struct Reply {
    status: u16,
    /// `None`: an empty body, as the 413 that Netty answers before Elasticsearch sees the request.
    body: Option<String>,
    challenge: bool,
}

impl Reply {
    fn json(status: u16, body: String) -> Reply {
        Reply { status, body: Some(body), challenge: false }
    }

    /// Elasticsearch's error envelope around an `error` object: the object is also the sole root
    /// cause, as it is for exceptions without a cause.
    fn error(status: u16, object: &str) -> Reply {
        let body = format!(r#"{{"error":{{"root_cause":[{object}],{},"status":{status}}}"#, &object[1..]);
        Reply::json(status, body)
    }

    fn exception(status: u16, kind: &str, reason: &str) -> Reply {
        Reply::error(status, &error_object(kind, reason, ""))
    }

    /// The flat form the REST layer uses for requests no handler took.
    fn simple(status: u16, message: &str) -> Reply {
        Reply::json(status, format!(r#"{{"error":{},"status":{status}}}"#, json_str(message)))
    }
}

impl From<BulkError> for Reply {
    fn from(e: BulkError) -> Reply {
        Reply::exception(400, e.kind, &e.reason)
    }
}

/// What the answer's rendering depends on besides the reply.
struct Rendering {
    flavor: Flavor,
    head: bool,
    compatible: bool,
    filter_path: Option<String>,
    pretty: bool,
}

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, ConnectInfo(conn): ConnectInfo<Conn>, req: Request) -> Response {
    let started = Instant::now();
    let faults = shared.faults();
    let (parts, body) = req.into_parts();
    let reply = dispatch(&shared, &faults, &conn, &parts, body, started).await;
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    let rendering = Rendering {
        flavor: shared.config.flavor,
        head: parts.method == Method::HEAD,
        compatible: [ACCEPT, CONTENT_TYPE]
            .iter()
            .any(|h| parts.headers.get(h).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("compatible-with="))),
        filter_path: query_param(&parts, "filter_path"),
        pretty: query_param(&parts, "pretty").is_some_and(|v| v != "false"),
    };
    render(reply, &rendering)
}

fn render(reply: Reply, r: &Rendering) -> Response {
    let mut body = reply.body;
    if let (Some(text), true) = (&body, r.filter_path.is_some() || r.pretty)
        && let Ok(mut value) = serde_json::from_str(text)
    {
        if let Some(spec) = r.filter_path.as_deref().filter(|_| (200..300).contains(&reply.status)) {
            value = filter_path(value, spec);
        }
        let text = if r.pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
        body = text.ok().or(body);
    }
    let has_body = body.is_some();
    let mut response = Response::new(if r.head { Body::empty() } else { Body::from(body.unwrap_or_default()) });
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if r.flavor == Flavor::Elasticsearch {
        headers.insert("X-elastic-product", HeaderValue::from_static("Elasticsearch"));
    }
    if has_body {
        let content_type = match (r.flavor, r.compatible) {
            (Flavor::Elasticsearch, true) => "application/vnd.elasticsearch+json;compatible-with=8",
            (Flavor::Elasticsearch, false) => "application/json",
            (Flavor::OpenSearch, _) => "application/json; charset=UTF-8",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if reply.challenge {
        for challenge in CHALLENGES {
            headers.append(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
    }
    response
}

fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The request URI as Elasticsearch quotes it in messages: path and query string.
fn uri(parts: &Parts) -> &str {
    parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn dispatch(shared: &Shared, faults: &EsFaults, conn: &Conn, parts: &Parts, body: Body, started: Instant) -> Reply {
    let config = &shared.config;
    let path = parts.uri.path();
    if matches!(parts.method, Method::POST | Method::PUT) && (path == "/_bulk" || path.ends_with("/_bulk")) {
        shared.bulk_requests.fetch_add(1, Ordering::Relaxed);
    }
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > config.max_content_length as u64) {
        return Reply { status: 413, body: None, challenge: false };
    }
    let Ok(bytes) = axum::body::to_bytes(body, config.max_content_length).await else {
        return Reply { status: 413, body: None, challenge: false };
    };
    if !bytes.is_empty()
        && let Err(reply) = check_content_type(&parts.headers)
    {
        return reply;
    }
    if let Err(reply) = authenticate(config, parts) {
        return reply;
    }

    let segments: Vec<String> = parts.uri.path().split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = &parts.method;
    let allow = |allowed: &[Method]| -> Result<(), Reply> {
        if allowed.contains(method) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        let message = format!("Incorrect HTTP method for uri [{}] and method [{method}], allowed: [{}]", uri(parts), names.join(", "));
        Err(Reply::simple(405, &message))
    };
    let read = [Method::GET, Method::HEAD];
    let routed = match segments.as_slice() {
        [] => allow(&read).map(|()| root(shared, faults)),
        ["_bulk"] => match allow(&[Method::POST, Method::PUT]) {
            Ok(()) => Ok(bulk_request(shared, faults, conn, parts, &bytes, None, started)),
            Err(e) => Err(e),
        },
        [index, "_bulk"] => match allow(&[Method::POST, Method::PUT]) {
            Ok(()) => Ok(bulk_request(shared, faults, conn, parts, &bytes, Some(index), started)),
            Err(e) => Err(e),
        },
        ["_cluster", "health"] | ["_cluster", "health", _] => allow(&[Method::GET]).map(|()| health(shared, faults)),
        ["_count"] => allow(&[Method::GET, Method::POST]).map(|()| count(shared, "_all")),
        [index, "_count"] => allow(&[Method::GET, Method::POST]).map(|()| count(shared, index)),
        [index, "_doc", id] => allow(&read).map(|()| get_doc(shared, index, id)),
        [index] if !index.starts_with('_') => allow(&read).map(|()| index_info(shared, index)),
        _ => Ok(Reply::simple(400, &format!("no handler found for uri [{}] and method [{method}]", uri(parts)))),
    };
    routed.unwrap_or_else(|reply| reply)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Reply> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(Reply::simple(406, "Content-Type header is missing"));
    };
    let text = value.to_str().unwrap_or_default();
    let mime = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "application/x-ndjson" | "application/vnd.elasticsearch+json" | "application/vnd.elasticsearch+x-ndjson" => {
            Ok(())
        }
        _ => Err(Reply::simple(406, &format!("Content-Type header [{text}] is not supported"))),
    }
}

fn authenticate(config: &EsConfig, parts: &Parts) -> Result<(), Reply> {
    if config.basic.is_none() && config.api_key.is_none() {
        return Ok(());
    }
    let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    let credentials = credentials.trim();
    let refused = |reason: String| {
        let challenges: Vec<String> = CHALLENGES.iter().map(|c| json_str(c)).collect();
        let rest = format!(r#","header":{{"WWW-Authenticate":[{}]}}"#, challenges.join(","));
        let mut reply = Reply::error(401, &error_object("security_exception", &reason, &rest));
        reply.challenge = true;
        Err(reply)
    };
    let missing = || refused(format!("missing authentication credentials for REST request [{}]", uri(parts)));
    let unknown =
        || refused("unable to authenticate with provided credentials and anonymous access is not allowed for this request".into());
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = STANDARD.decode(credentials).ok().and_then(|d| String::from_utf8(d).ok());
            let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else { return missing() };
            match &config.basic {
                Some((u, p)) if u == user && p == password => Ok(()),
                _ => refused(format!("unable to authenticate user [{user}] for REST request [{}]", uri(parts))),
            }
        }
        "apikey" if config.api_key.as_deref() == Some(credentials) => Ok(()),
        "apikey" | "bearer" => unknown(),
        _ => missing(),
    }
}

fn root(shared: &Shared, faults: &EsFaults) -> Reply {
    if faults.red {
        return no_master();
    }
    let uuid = &shared.cluster_uuid;
    // Elasticsearch pretty-prints this one answer unless told `?pretty=false`.
    let body = match shared.config.flavor {
        Flavor::Elasticsearch => format!(
            r#"{{
  "name" : "es-emulator",
  "cluster_name" : "elasticsearch",
  "cluster_uuid" : "{uuid}",
  "version" : {{
    "number" : "8.15.0",
    "build_flavor" : "default",
    "build_type" : "docker",
    "build_hash" : "1a77947f34deddb41af25e6f0ddb8e830159c179",
    "build_date" : "2024-08-05T10:05:34.233336849Z",
    "build_snapshot" : false,
    "lucene_version" : "9.11.1",
    "minimum_wire_compatibility_version" : "7.17.0",
    "minimum_index_compatibility_version" : "7.0.0"
  }},
  "tagline" : "You Know, for Search"
}}
"#
        ),
        Flavor::OpenSearch => format!(
            r#"{{
  "name" : "opensearch-emulator",
  "cluster_name" : "opensearch",
  "cluster_uuid" : "{uuid}",
  "version" : {{
    "distribution" : "opensearch",
    "number" : "2.17.0",
    "build_type" : "tar",
    "build_hash" : "8586481dc99b1740ca3c7c966aee15ad0fc7b412",
    "build_date" : "2024-09-13T01:04:14.707418737Z",
    "build_snapshot" : false,
    "lucene_version" : "9.11.1",
    "minimum_wire_compatibility_version" : "7.10.0",
    "minimum_index_compatibility_version" : "7.0.0"
  }},
  "tagline" : "The OpenSearch Project: https://opensearch.org/"
}}
"#
        ),
    };
    Reply::json(200, body)
}

fn no_master() -> Reply {
    Reply::exception(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];")
}

fn health(shared: &Shared, faults: &EsFaults) -> Reply {
    let indices = shared.store().names().len();
    let (status, active, unassigned, percent) = if faults.red { ("red", 0, indices.max(1), "0.0") } else { ("green", indices, 0, "100.0") };
    let (cluster, discovered) = match shared.config.flavor {
        Flavor::Elasticsearch => ("elasticsearch", ""),
        Flavor::OpenSearch => ("opensearch", r#""discovered_master":true,"discovered_cluster_manager":true,"#),
    };
    Reply::json(
        200,
        format!(
            r#"{{"cluster_name":"{cluster}","status":"{status}","timed_out":false,{discovered}"number_of_nodes":1,"number_of_data_nodes":1,"active_primary_shards":{active},"active_shards":{active},"relocating_shards":0,"initializing_shards":0,"unassigned_shards":{unassigned},"delayed_unassigned_shards":0,"number_of_pending_tasks":0,"number_of_in_flight_fetch":0,"task_max_waiting_in_queue_millis":0,"active_shards_percent_as_number":{percent}}}"#
        ),
    )
}

fn count(shared: &Shared, expression: &str) -> Reply {
    let store = shared.store();
    let names = match store.expand(expression) {
        Ok(names) => names,
        Err(object) => return Reply::error(404, &object),
    };
    let count: usize = names.iter().filter_map(|n| store.index(n)).map(|i| i.len()).sum();
    let shards = names.len();
    Reply::json(200, format!(r#"{{"count":{count},"_shards":{{"total":{shards},"successful":{shards},"skipped":0,"failed":0}}}}"#))
}

fn get_doc(shared: &Shared, name: &str, id: &str) -> Reply {
    let store = shared.store();
    let Some((_, index)) = store.resolve(name) else {
        return Reply::error(404, &index_not_found(name, "index_expression"));
    };
    let (index_name, id_json) = (json_str(&index.write_name), json_str(id));
    match index.get(id) {
        Some(doc) => Reply::json(
            200,
            format!(
                r#"{{"_index":{index_name},"_id":{id_json},"_version":{},"_seq_no":{},"_primary_term":1,"found":true,"_source":{}}}"#,
                doc.version, doc.seq_no, doc.source
            ),
        ),
        None => Reply::json(404, format!(r#"{{"_index":{index_name},"_id":{id_json},"found":false}}"#)),
    }
}

fn index_info(shared: &Shared, name: &str) -> Reply {
    let store = shared.store();
    let Some((provided, index)) = store.resolve(name) else {
        return Reply::error(404, &index_not_found(name, "index_or_alias"));
    };
    let data_stream = if index.data_stream { format!(r#","data_stream":{}"#, json_str(provided)) } else { String::new() };
    Reply::json(
        200,
        format!(
            r#"{{{}:{{"aliases":{{}},"mappings":{{}},"settings":{{"index":{{"creation_date":"{}","number_of_shards":"1","number_of_replicas":"1","uuid":{},"provided_name":{}}}}}{data_stream}}}}}"#,
            json_str(&index.write_name),
            index.created_ms,
            json_str(&index.uuid),
            json_str(&index.write_name),
        ),
    )
}

fn bulk_request(
    shared: &Shared,
    faults: &EsFaults,
    conn: &Conn,
    parts: &Parts,
    bytes: &[u8],
    default_index: Option<&str>,
    started: Instant,
) -> Reply {
    let gzip = parts.headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let data: Cow<'_, [u8]> = if gzip {
        match gunzip(bytes) {
            Ok(data) => Cow::Owned(data),
            Err(e) => {
                return Reply::exception(400, "illegal_argument_exception", &format!("Failed to decompress the request body: {e}"));
            }
        }
    } else {
        Cow::Borrowed(bytes)
    };
    // Parsed and probed before the lock: only execution is serialized.
    let parsed = if data.is_empty() {
        Err(Reply::exception(400, "parse_exception", "request body is required"))
    } else {
        bulk::parse(&data, default_index, faults.reject_field.as_deref()).map_err(Reply::from)
    };
    let refresh = query_param(parts, "refresh").is_some_and(|v| v.is_empty() || v == "true");

    let mut store = shared.store();
    let draw: f64 = store.rng.random();
    if draw < faults.reset_rate {
        if store.rng.random_bool(0.5)
            && let Ok(ops) = parsed
        {
            store.apply(ops, faults);
        }
        conn.reset();
        return Reply::simple(500, "connection reset"); // never sent
    }
    if draw < faults.reset_rate + faults.request_429_rate {
        let reason = format!(
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=104759862, replica_bytes=0, \
             all_bytes=104759862, coordinating_operation_bytes={}, max_coordinating_and_primary_bytes=107374182]",
            bytes.len()
        );
        return Reply::exception(429, "es_rejected_execution_exception", &reason);
    }
    if draw < faults.reset_rate + faults.request_429_rate + faults.request_503_rate {
        return no_master();
    }
    let ops = match parsed {
        Ok(ops) => ops,
        Err(reply) => return reply,
    };
    let items = store.apply(ops, faults);
    drop(store);
    Reply::json(200, bulk_body(&items, started.elapsed().as_millis(), refresh))
}

fn bulk_body(items: &[Item], took: u128, refresh: bool) -> String {
    let errors = items.iter().any(|i| matches!(i.outcome, Outcome::Failed { .. }));
    let mut out = String::with_capacity(64 + items.len() * 220);
    let _ = write!(out, r#"{{"took":{took},"errors":{errors},"items":["#);
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(out, r#"{{"{}":{{"_index":"#, item.action.name());
        push_json_str(&mut out, &item.index);
        out.push_str(r#","_id":"#);
        match &item.id {
            Some(id) => push_json_str(&mut out, id),
            None => out.push_str("null"),
        }
        match &item.outcome {
            Outcome::Done { version, result, status, seq_no, noop } => {
                let _ = write!(out, r#","_version":{version},"result":"{result}""#);
                if refresh && !noop {
                    out.push_str(r#","forced_refresh":true"#);
                }
                let (total, successful) = if *noop { (0, 0) } else { (2, 1) };
                let _ = write!(
                    out,
                    r#","_shards":{{"total":{total},"successful":{successful},"failed":0}},"_seq_no":{seq_no},"_primary_term":1,"status":{status}}}}}"#
                );
            }
            Outcome::Failed { status, error } => {
                let _ = write!(out, r#","status":{status},"error":{error}}}}}"#);
            }
        }
    }
    out.push_str("]}");
    out
}
