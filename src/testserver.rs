//! `sluice testserver`: an IDMEFv2 receiver for trying a pipeline (the original IDMEFv2 connectors' test server, with
//! the status codes of the IDMEFv2 HTTP transport draft). Each POST body is validated against
//! the schema of its `Version` (2.D.V08, or 2.D.V04): 200 when valid, 400 with the validation errors when not, 405 for other
//! methods. One summary line per message on stdout; counts at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::schemas::{validator, validator_v04};

pub struct Counts {
    pub valid: AtomicU64,
    pub invalid: AtomicU64,
}

struct Shared {
    validator: jsonschema::Validator,
    validator_v04: jsonschema::Validator,
    counts: Arc<Counts>,
}

/// Serves until `stop` resolves; returns the counts.
pub async fn serve(listen: SocketAddr, stop: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<Arc<Counts>> {
    let counts = Arc::new(Counts { valid: AtomicU64::new(0), invalid: AtomicU64::new(0) });
    let shared = Arc::new(Shared { validator: validator(), validator_v04: validator_v04(), counts: counts.clone() });
    let app = Router::new().fallback(receive).with_state(shared);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| anyhow::anyhow!("binding {listen}: {e}"))?;
    println!("IDMEFv2 test server listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(stop).await?;
    Ok(counts)
}

async fn receive(State(shared): State<Arc<Shared>>, method: Method, body: Bytes) -> (StatusCode, String) {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST one IDMEFv2 message per request\n".into());
    }
    let n = shared.counts.valid.load(Ordering::Relaxed) + shared.counts.invalid.load(Ordering::Relaxed) + 1;
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            shared.counts.invalid.fetch_add(1, Ordering::Relaxed);
            println!("{n} INVALID not JSON: {e}");
            return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}\n"));
        }
    };
    // Each message is checked against the draft its `Version` names (V08 unless it says V04).
    let validator = if message.get("Version").and_then(Value::as_str) == Some(crate::encode::idmefv2::VERSION_V04) {
        &shared.validator_v04
    } else {
        &shared.validator
    };
    let errors: Vec<String> = validator.iter_errors(&message).map(|e| format!("{e} (at {})", e.instance_path())).collect();
    let field =
        |k: &str| message.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_else(|| "-".into());
    if errors.is_empty() {
        shared.counts.valid.fetch_add(1, Ordering::Relaxed);
        println!("{n} OK {} {} {} {}", field("ID"), field("Priority"), field("Category"), field("Description"));
        (StatusCode::OK, String::new())
    } else {
        shared.counts.invalid.fetch_add(1, Ordering::Relaxed);
        println!("{n} INVALID {} {}", field("ID"), errors.join("; "));
        (StatusCode::BAD_REQUEST, errors.join("\n") + "\n")
    }
}
