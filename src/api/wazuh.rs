//! The original Wazuh-to-MongoDB service's query endpoints over the Wazuh inventory (collected by `type: wazuh_api`) and the
//! webhook alerts: one record per agent, package and file, paged by cursor, tenant-scoped.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::{ApiError, AppState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The tenant, for a token not bound to one.
    tenant: Option<String>,
    /// At most this many (default 100, at most 10,000).
    limit: Option<usize>,
    /// The `next` value of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page {
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
    /// Pass as `cursor` for the next page; absent on the last.
    next: Option<String>,
}

/// A store error from a bad cursor is the caller's; anything else is ours.
fn page_error(e: anyhow::Error) -> ApiError {
    if format!("{e:#}").contains("invalid cursor") { ApiError::bad_request("invalid cursor") } else { ApiError::internal(e) }
}

fn page(p: crate::store::WazuhPage) -> Json<Page> {
    Json(Page { items: p.items, next: p.next })
}

/// Agents, by id; each one record, updated in place when the manager reports changes.
#[utoipa::path(get, path = "/api/agents", tag = "wazuh", params(PageQuery), responses((status = 200, body = Page), (status = 400), (status = 401), (status = 403)))]
pub async fn agents(State(state): State<AppState>, caller: Caller, Query(q): Query<PageQuery>) -> Result<Json<Page>, ApiError> {
    caller.require_read()?;
    let tenant = caller.tenant(q.tenant.as_deref())?;
    let p = state.view.store.wazuh_agents(&tenant, q.cursor.as_deref(), q.limit.unwrap_or(100)).await.map_err(page_error)?;
    Ok(page(p))
}

/// An agent's FIM (syscheck) files, by path.
#[utoipa::path(
    get,
    path = "/api/agents/{id}/syscheck",
    tag = "wazuh",
    params(("id" = String, Path, description = "Agent id, e.g. 001"), PageQuery),
    responses((status = 200, body = Page), (status = 400), (status = 401), (status = 403), (status = 404))
)]
pub async fn syscheck(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page>, ApiError> {
    caller.require_read()?;
    let tenant = caller.tenant(q.tenant.as_deref())?;
    known_agent(&state, &tenant, &id).await?;
    let p = state.view.store.wazuh_syscheck(&tenant, &id, q.cursor.as_deref(), q.limit.unwrap_or(100)).await.map_err(page_error)?;
    Ok(page(p))
}

/// An agent's installed packages, by name, version and architecture.
#[utoipa::path(
    get,
    path = "/api/agents/{id}/software",
    tag = "wazuh",
    params(("id" = String, Path, description = "Agent id, e.g. 001"), PageQuery),
    responses((status = 200, body = Page), (status = 400), (status = 401), (status = 403), (status = 404))
)]
pub async fn software(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page>, ApiError> {
    caller.require_read()?;
    let tenant = caller.tenant(q.tenant.as_deref())?;
    known_agent(&state, &tenant, &id).await?;
    let p = state.view.store.wazuh_packages(&tenant, &id, q.cursor.as_deref(), q.limit.unwrap_or(100)).await.map_err(page_error)?;
    Ok(page(p))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// The tenant, for a token not bound to one.
    tenant: Option<String>,
}

/// An agent's operating system, one record per manager that reports it.
#[utoipa::path(
    get,
    path = "/api/agents/{id}/osinfo",
    tag = "wazuh",
    params(("id" = String, Path, description = "Agent id, e.g. 001"), TenantQuery),
    responses((status = 200, body = Vec<Object>), (status = 400), (status = 401), (status = 403), (status = 404))
)]
pub async fn osinfo(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_read()?;
    let tenant = caller.tenant(q.tenant.as_deref())?;
    known_agent(&state, &tenant, &id).await?;
    Ok(Json(state.view.store.wazuh_os(&tenant, &id).await.map_err(ApiError::internal)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentAlertQuery {
    /// The tenant, for a token not bound to one.
    tenant: Option<String>,
    /// Only alerts with at least this risk score (0–100), or of exactly this level (`info`,
    /// `low`, `medium`, `high`, `critical`).
    #[param(value_type = Option<String>)]
    risk_score: Option<super::read::RiskFilter>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
}

/// An agent's webhook alerts, newest first (`/api/alerts?agent_id=` pages further).
#[utoipa::path(
    get,
    path = "/api/agents/{id}/alerts",
    tag = "wazuh",
    params(("id" = String, Path, description = "Agent id, e.g. 001"), AgentAlertQuery),
    responses((status = 200, body = Vec<Object>), (status = 400), (status = 401), (status = 403))
)]
pub async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<AgentAlertQuery>,
) -> Result<Json<Vec<super::read::AlertOut>>, ApiError> {
    caller.require_read()?;
    let tenant = caller.tenant(q.tenant.as_deref())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = super::read::AlertFilter { tenant: &tenant, agent_id: Some(&id), risk: q.risk_score, since: None, until: None };
    let (alerts, _) = super::read::find_alerts(&state, &filter, None, limit).await?;
    Ok(Json(alerts))
}

/// 404 for an agent the tenant's inventory does not have.
async fn known_agent(state: &AppState, tenant: &str, id: &str) -> Result<(), ApiError> {
    let rows = state.view.store.wazuh_agent(tenant, id).await.map_err(ApiError::internal)?;
    if rows.is_empty() { Err(ApiError::not_found(format!("no agent `{id}`"))) } else { Ok(()) }
}
