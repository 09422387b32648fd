//! Coordination tickets (SPEC §6): L2 hands a customer-side problem to the operations staff
//! (《客户问题协调单》) or a change to problem management (《问题协调单》). Staff only.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::extract::{AuthUser, IfMatch, JsonBody, ValidQuery};
use super::pagination::{ChangesQuery, Page, PageQuery, changes_page};
use crate::api::idempotency::{IdempotencyKey, json_answer, run_keyed};
use crate::api::problems;
use crate::api::respond::versioned;
use crate::domain::changes::FieldChange;
use crate::domain::coordination::{
    CoordinationKind, CoordinationStatus, CoordinationTicket, TicketCommand, TicketRequest,
    TicketResolution,
};
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::coordination::{TicketFilter, TicketHistoryRow};

/// A new coordination ticket.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "customer_issue", "assignee_id": 5, "summary": "请到现场检查 3 号收费机网络", "details": "远程日志显示 3 号机与数据库之间频繁断连，需要现场排查网线和交换机端口。"}))]
pub struct CreateTicketRequest {
    /// `customer_issue` (to an active ops_staff user) or `problem` (to an active l2_engineer or
    /// incident_manager).
    pub kind: CoordinationKind,
    /// Who is to work it.
    pub assignee_id: i64,
    /// One line, 1–200 characters.
    #[schema(
        example = "医院机房交换机故障，需运维现场更换",
        min_length = 1,
        max_length = 200
    )]
    pub summary: String,
    /// What L2 found, up to 10 000 characters.
    #[serde(default)]
    #[schema(
        example = "HIS 服务器与收费终端之间网络中断，ping 不通网关。",
        max_length = 10000
    )]
    pub details: String,
}

/// Accepting needs no fields.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct AcceptTicketRequest {}

/// The assignee's answer.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"analysis": "交换机 12 号端口老化，导致间歇性断连。", "process": "更换网线并改接到 14 号端口，连续观察 30 分钟。", "result": "3 号机连接稳定，收费录入恢复正常。"}))]
pub struct ResolveTicketRequest {
    /// 原因分析, 1–10 000 characters.
    #[schema(example = "交换机电源模块损坏")]
    pub analysis: String,
    /// 处理过程.
    #[schema(example = "现场更换交换机电源模块并恢复配置")]
    pub process: String,
    /// 处理结果.
    #[schema(example = "网络恢复，收费终端可正常录入")]
    pub result: String,
    /// The root cause (required for `problem`, refused for `customer_issue`).
    pub root_cause: Option<String>,
    /// The change that follows (`problem` only), up to 100 characters.
    #[schema(example = "CHG-2025-0042")]
    pub change_ref: Option<String>,
}

/// Why a ticket is withdrawn.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "问题已由远程处理解决，无需现场。"}))]
pub struct CancelTicketRequest {
    /// 1–10 000 characters.
    #[schema(example = "用户已自行恢复网络")]
    pub reason: String,
}

/// Filters of the ticket queues.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTicketsQuery {
    /// Assigned to this user (the operations staff's queue: their own id).
    pub assignee_id: Option<i64>,
    /// In this state.
    #[param(inline)]
    pub status: Option<CoordinationStatus>,
    /// Of this kind.
    #[param(inline)]
    pub kind: Option<CoordinationKind>,
    /// Of this incident.
    pub incident_id: Option<i64>,
}

/// An entry of a ticket's history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TicketHistoryEntry {
    /// Id.
    pub id: i64,
    /// Who acted.
    pub actor_id: Option<i64>,
    /// `created`, `accept`, `resolve` or `cancel`.
    #[schema(example = "accept")]
    pub action: String,
    /// Fields that changed, old → new.
    pub changes: Vec<FieldChange>,
    /// The reason of a cancellation.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<TicketHistoryRow> for TicketHistoryEntry {
    fn from(row: TicketHistoryRow) -> Self {
        TicketHistoryEntry {
            changes: row.field_changes(),
            id: row.id,
            actor_id: row.actor_id,
            action: row.action,
            comment: row.comment,
            created_at: row.created_at,
        }
    }
}

fn location(ticket: &CoordinationTicket) -> String {
    format!("/api/v1/coordination-tickets/{}", ticket.id)
}

/// Open a coordination ticket on an incident
///
/// `customer_issue` (《客户问题协调单》) asks an `ops_staff` engineer to work at the customer's site; while
/// it is open or accepted the incident cannot be resolved. `problem` (《问题协调单》) hands a root-cause
/// analysis to an L2 engineer or incident manager. Emits `coordination.created`. The example opens
/// a `customer_issue` for user 5, an `ops_staff` user, on any open incident.
///
/// Roles: `l2_engineer`, `incident_manager`.
///
/// Errors: 409 `incident_closed`; 422 on `assignee_id` for someone inactive or of the wrong role.
#[utoipa::path(
    tag = "coordination",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IdempotencyKey),
    request_body = CreateTicketRequest,
    responses(
        (status = 201, description = "Opened", body = CoordinationTicket,
            headers(("ETag" = String, description = "Version"), ("Location" = String, description = "The ticket"))),
        (status = 409, description = "`incident_closed`", body = crate::error::Problem, content_type = "application/problem+json"),
        problems::CreateErrors, problems::NotFound
    )
)]
#[post("/incidents/{id}/coordination-tickets")]
pub async fn create_ticket(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    body: JsonBody<CreateTicketRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let request = body.parse()?;
    let request = TicketRequest {
        kind: request.kind,
        assignee_id: request.assignee_id,
        summary: request.summary,
        details: request.details,
    };
    let incident_id = id.into_inner();
    let now = state.clock.now();
    run_keyed(&http, &state, move |conn| {
        let ticket =
            store::coordination::create(conn, incident_id, caller.id, &caller.roles, request, now)?;
        json_answer(
            StatusCode::CREATED,
            Some(ticket.version),
            Some(location(&ticket)),
            &ticket,
        )
    })
    .await
}

async fn act(
    state: &AppState,
    caller: AuthUser,
    id: i64,
    if_match: IfMatch,
    command: TicketCommand,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let now = state.clock.now();
    let who = caller.caller();
    let settings = state.write_settings();
    let ticket = store::run(&state.pool, move |conn| {
        store::ticket_steps::execute(conn, id, if_match.0, &who, command, &settings, now)
    })
    .await?;
    Ok(versioned(ticket.version, ticket))
}

/// Accept a coordination ticket: open → accepted
///
/// Roles: the ticket's assignee.
///
/// Errors: 409 `illegal_transition` unless `open`; 403 for anyone else.
#[utoipa::path(
    tag = "coordination",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket id"), IfMatch),
    request_body(content = AcceptTicketRequest, description = "An empty object, or no body"),
    responses(
        (status = 200, description = "Accepted", body = CoordinationTicket),
        problems::StepErrors
    )
)]
#[post("/coordination-tickets/{id}/accept")]
pub async fn accept_ticket(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<AcceptTicketRequest>,
) -> Result<HttpResponse, AppError> {
    body.parse_or_default()?;
    act(
        &state,
        caller,
        id.into_inner(),
        if_match,
        TicketCommand::Accept,
    )
    .await
}

/// Resolve a coordination ticket: accepted → resolved
///
/// With analysis, process and result (and a root cause for `problem`). The incident's history gets
/// the result unless it is closed; emits `coordination.resolved`.
///
/// Roles: the ticket's assignee.
///
/// Errors: 409 `illegal_transition` unless `accepted`.
#[utoipa::path(
    tag = "coordination",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket id"), IfMatch),
    request_body = ResolveTicketRequest,
    responses(
        (status = 200, description = "Resolved", body = CoordinationTicket),
        problems::StepErrors
    )
)]
#[post("/coordination-tickets/{id}/resolve")]
pub async fn resolve_ticket(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<ResolveTicketRequest>,
) -> Result<HttpResponse, AppError> {
    let request = body.parse()?;
    let command = TicketCommand::Resolve(TicketResolution {
        analysis: request.analysis,
        process: request.process,
        result: request.result,
        root_cause: request.root_cause,
        change_ref: request.change_ref,
    });
    act(&state, caller, id.into_inner(), if_match, command).await
}

/// Cancel a coordination ticket from open or accepted
///
/// Roles: the ticket's creator, `incident_manager`.
///
/// Errors: 409 `illegal_transition` once resolved or cancelled.
#[utoipa::path(
    tag = "coordination",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket id"), IfMatch),
    request_body = CancelTicketRequest,
    responses(
        (status = 200, description = "Cancelled", body = CoordinationTicket),
        problems::StepErrors
    )
)]
#[post("/coordination-tickets/{id}/cancel")]
pub async fn cancel_ticket(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<CancelTicketRequest>,
) -> Result<HttpResponse, AppError> {
    let reason = body.parse()?.reason;
    act(
        &state,
        caller,
        id.into_inner(),
        if_match,
        TicketCommand::Cancel { reason },
    )
    .await
}

/// One coordination ticket
///
/// Roles: staff.
///
/// Errors: 404 `not_found`.
#[utoipa::path(
    tag = "coordination",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket", body = CoordinationTicket,
            headers(("ETag" = String, description = "Version"))),
        problems::ReadErrors
    )
)]
#[get("/coordination-tickets/{id}")]
pub async fn get_ticket(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let id = id.into_inner();
    let ticket = store::run(&state.pool, move |conn| store::coordination::find(conn, id)).await?;
    Ok(versioned(ticket.version, ticket))
}

/// A coordination ticket's history, oldest first
///
/// Roles: staff.
#[utoipa::path(
    tag = "coordination",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "History, oldest first", body = Vec<TicketHistoryEntry>),
        problems::ReadErrors
    )
)]
#[get("/coordination-tickets/{id}/history")]
pub async fn get_ticket_history(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let id = id.into_inner();
    let rows = state
        .run_read(caller.id, move |conn| {
            store::coordination::history(conn, id)
        })
        .await?;
    let entries: Vec<TicketHistoryEntry> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(entries))
}

/// Coordination ticket queues, oldest first
///
/// Filter by assignee, status, kind and incident: an operations engineer's open tickets are
/// `assignee_id=<own id>&status=open`. `updated_since` with `sort=updated_at` polls for changes.
///
/// Roles: staff.
#[utoipa::path(
    tag = "coordination",
    security(("bearer" = [])),
    params(ListTicketsQuery, ChangesQuery, PageQuery),
    responses(
        (status = 200, description = "A page of tickets", body = Page<CoordinationTicket>),
        problems::ListErrors
    )
)]
#[get("/coordination-tickets")]
pub async fn list_tickets(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<ListTicketsQuery>,
    changes: ValidQuery<ChangesQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let page_req = changes.0.page(&paging.0)?;
    let query = query.0;
    let filter = TicketFilter {
        assignee_id: query.assignee_id,
        status: query.status,
        kind: query.kind,
        incident_id: query.incident_id,
    };
    let slot = state.heavy_read_slot().await?;
    let rows = store::run(&state.pool, move |conn| {
        store::coordination::list(conn, &filter, page_req)
    })
    .await?;
    Ok(changes_page(rows, |t| t).stream(slot))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_ticket)
        .service(list_tickets)
        .service(get_ticket)
        .service(get_ticket_history)
        .service(accept_ticket)
        .service(resolve_ticket)
        .service(cancel_ticket);
}
