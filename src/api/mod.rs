//! The REST API (axum): events in (`/api/v1/ingest/{source}`, the Wazuh webhook), health,
//! statistics, alerts, usage, tokens and metrics out. Every endpoint but `/health` and the
//! OpenAPI document needs a bearer token (see [`auth`]); a token bound to a tenant sees and
//! writes only that tenant's data.

pub mod auth;
pub mod config;
mod events;
mod read;
pub mod server;
pub mod siem;
mod tls;
mod wazuh;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::ApiConfig;

use crate::pipeline::runtime::RuntimeView;

/// A request to apply the config file plus the API's SIEM connections; answered when done.
pub type Reconfigure = tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<anyhow::Result<()>>>;

#[derive(Clone)]
pub struct AppState {
    pub view: RuntimeView,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub reconfigure: Option<Reconfigure>,
    failed_logins: Arc<auth::FailedLogins>,
}

/// An error answer: `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn too_many(m: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, m)
    }
    pub fn internal(e: anyhow::Error) -> Self {
        tracing::error!(error = %format!("{e:#}"), "API request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the sluice log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Every error answer as `{"error": "..."}`: axum's own rejections (query string, path, body
/// too large, unreadable body, method not allowed) are plain text or empty; their text becomes
/// the message. Headers such as `Allow` are kept.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        t => t.to_string(),
    };
    let body = serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default();
    parts.headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The client's address, for limiting failed authentications per address.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

#[derive(OpenApi)]
#[openapi(
    info(title = "sluice", description = "Multi-tenant security event collector and SIEM forwarder"),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The router and the OpenAPI document of exactly its routes.
pub fn router(state: AppState, max_body: usize) -> (axum::Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(read::health))
        .routes(routes!(read::metrics))
        .routes(routes!(read::sinks))
        .routes(routes!(read::alerts))
        .routes(routes!(read::usage))
        .routes(routes!(read::tokens, read::create_token))
        .routes(routes!(read::revoke_token))
        .routes(routes!(events::ingest))
        .routes(routes!(events::wazuh_alert))
        .routes(routes!(siem::list, siem::create))
        .routes(routes!(siem::get_one, siem::update, siem::delete))
        .routes(routes!(siem::test))
        .routes(routes!(siem::export))
        .routes(routes!(siem::statistics))
        .routes(routes!(siem::health))
        .routes(routes!(siem::process_pending))
        .routes(routes!(siem::retry_failed))
        .routes(routes!(wazuh::agents))
        .routes(routes!(wazuh::syscheck))
        .routes(routes!(wazuh::software))
        .routes(routes!(wazuh::osinfo))
        .routes(routes!(wazuh::alerts))
        .with_state(state)
        .split_for_parts();
    let document = openapi.clone();
    let router = router
        .route("/api/openapi.json", axum::routing::get(move || async move { Json(document) }))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(json_errors));
    (router, openapi)
}

/// A bound API listener, ready to serve.
pub struct BoundApi {
    router: axum::Router,
    tcp: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: server::Limits,
    pub local_addr: SocketAddr,
}

/// Binds the API's address (so a taken port fails the start) and builds the router.
pub async fn bind(
    config: &ApiConfig,
    view: RuntimeView,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    reconfigure: Option<Reconfigure>,
) -> anyhow::Result<BoundApi> {
    let state = AppState { view, metrics, reconfigure, failed_logins: Arc::default() };
    let (router, _) = router(state, config.max_body_bytes);
    let tcp = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| anyhow::anyhow!("API listener on {}: {e}", config.listen))?;
    let local_addr = tcp.local_addr()?;
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    Ok(BoundApi { router, tcp, tls, limits: config.limits(), local_addr })
}

impl BoundApi {
    /// Serves until `shutdown` resolves; requests in flight are finished.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let scheme = if self.tls.is_some() { "HTTPS" } else { "HTTP" };
        tracing::info!(listen = %self.local_addr, max_connections = self.limits.max_connections, "API listening ({scheme})");
        server::serve(self.tcp, "API", self.router, self.tls, self.limits, shutdown).await;
        Ok(())
    }
}
