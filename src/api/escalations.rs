//! Escalations (SPEC §5): functional (L1 → L2), priority (level changes) and hierarchical (to the
//! incident managers), and the managers' queue.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::{Validate, ValidationErrors};

use super::extract::{AuthUser, IfMatch, JsonBody, ValidQuery};
use super::pagination::{Page, PageQuery, page};
use crate::api::idempotency::{IdempotencyKey, json_answer, run_keyed};
use crate::api::problems;
use crate::domain::escalation::Escalation;
pub use crate::domain::escalation::{EscalationKind, PriorityTrigger};
use crate::domain::level::Level;
use crate::domain::role::Role;
use crate::domain::validation::check_text;
use crate::domain::workflow::{EscalationRequest, IncidentCommand};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::escalations::EscalationFilter;
use crate::store::{self, StoreError};

/// A new escalation, by kind.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[schema(example = json!({"kind": "hierarchical", "reason": "收费窗口排队超过 30 人，请事件经理协调资源。"}))]
pub enum CreateEscalationRequest {
    /// L1 → L2: the incident moves to tier l2, in progress, assigned to an L2 engineer.
    Functional {
        /// An active `l2_engineer`.
        assignee_id: i64,
        /// What L1 found and tried (初步解决判断的步骤), 1–10 000 characters.
        #[schema(min_length = 1, max_length = 10000)]
        diagnosis: String,
    },
    /// A level change; the deadline is recomputed. Raising: any staff but ops
    /// staff; lowering: incident managers.
    Priority {
        /// The new level.
        level: Level,
        /// Why, 1–10 000 characters.
        #[schema(min_length = 1, max_length = 10000)]
        reason: String,
        /// Default `manual`.
        trigger: Option<PriorityTrigger>,
    },
    /// To the incident managers' queue.
    Hierarchical {
        /// Why, 1–10 000 characters.
        #[schema(min_length = 1, max_length = 10000)]
        reason: String,
    },
}

impl Validate for CreateEscalationRequest {
    fn validate(&self) -> Result<(), ValidationErrors> {
        Ok(())
    }
}

/// An escalation as clients see it: the domain's record, documented as `EscalationResponse`.
pub type EscalationResponse = Escalation;

impl From<CreateEscalationRequest> for EscalationRequest {
    fn from(request: CreateEscalationRequest) -> Self {
        match request {
            CreateEscalationRequest::Functional {
                assignee_id,
                diagnosis,
            } => EscalationRequest::Functional {
                assignee_id,
                diagnosis,
            },
            CreateEscalationRequest::Priority {
                level,
                reason,
                trigger,
            } => EscalationRequest::Priority {
                level,
                reason,
                trigger,
            },
            CreateEscalationRequest::Hierarchical { reason } => {
                EscalationRequest::Hierarchical { reason }
            }
        }
    }
}

fn reason_error(field: &str, text: &str) -> Result<(), AppError> {
    check_text(field, text, 10_000).map_err(|e| AppError::Validation(vec![e]))
}

/// Escalate an incident: functional, priority or hierarchical
///
/// `functional` moves an l1 incident to l2, assigned to an L2 engineer, with the diagnosis so far.
/// `priority` changes the level: raising keeps the earlier deadline if sooner, lowering counts the
/// new target from recording. `hierarchical` calls the incident managers in. Each is recorded with
/// the incident change and its history entry at once; emits `escalation.created`. The example calls
/// the incident managers in on any open incident.
///
/// Roles: functional `service_desk` or `incident_manager`; raising staff other than `ops_staff`;
/// lowering `incident_manager`; hierarchical any staff.
///
/// Errors: 409 `illegal_transition` (an l2 incident escalated functionally, or a state that allows
/// no escalation); 409 `incident_closed`; 422 `validation_failed` for a bad field, e.g. an assignee
/// who is not an active L2 engineer.
#[utoipa::path(
    tag = "escalations",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Incident id"),
        IfMatch,
        IdempotencyKey
    ),
    request_body = CreateEscalationRequest,
    responses(
        (status = 201, description = "Escalated", body = EscalationResponse),
        (status = 409, description = "`incident_closed` or `illegal_transition`", body = crate::error::Problem, content_type = "application/problem+json"),
        problems::UpdateErrors
    )
)]
#[post("/incidents/{id}/escalations")]
pub async fn create_escalation(
    request: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<CreateEscalationRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let body_request = body.parse()?;
    match &body_request {
        CreateEscalationRequest::Functional { diagnosis, .. } => {
            reason_error("diagnosis", diagnosis)?
        }
        CreateEscalationRequest::Priority { reason, .. }
        | CreateEscalationRequest::Hierarchical { reason } => reason_error("reason", reason)?,
    }
    let command = IncidentCommand::Escalate(body_request.into());
    let (id, who, settings, now) = (
        id.into_inner(),
        caller.caller(),
        state.write_settings(),
        state.clock.now(),
    );
    run_keyed(&request, &state, move |conn| {
        let applied =
            store::incident_writes::execute(conn, id, if_match.0, &who, command, &settings, now)?;
        let escalation = applied
            .escalation
            .ok_or_else(|| AppError::internal("the escalation was not recorded"))?;
        json_answer(
            StatusCode::CREATED,
            Some(applied.incident.version),
            None,
            &escalation,
        )
    })
    .await
}

/// Filters of the incident managers' queue.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListEscalationsQuery {
    /// Kind.
    pub kind: Option<EscalationKind>,
    /// Acknowledged (`true`) or waiting (`false`).
    pub acknowledged: Option<bool>,
    /// Escalations of this incident.
    pub incident_id: Option<i64>,
}

/// Filters of one incident's escalations (the incident is in the path).
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentEscalationsQuery {
    /// Kind.
    pub kind: Option<EscalationKind>,
    /// Acknowledged (`true`) or waiting (`false`).
    pub acknowledged: Option<bool>,
}

async fn list(
    state: &AppState,
    filter: EscalationFilter,
    paging: PageQuery,
    in_path: bool,
) -> Result<HttpResponse, AppError> {
    let page_req = paging.request()?;
    let incident_id = filter.incident_id.filter(|_| in_path);
    let slot = state.heavy_read_slot().await?;
    let (rows, next) = store::run(&state.pool, move |conn| {
        if let Some(id) = incident_id {
            store::incidents::find_ref(conn, id)?
                .ok_or_else(|| StoreError::not_found("incident", id))?;
        }
        store::escalations::list(conn, &filter, page_req)
    })
    .await?;
    let items: Vec<EscalationResponse> = rows;
    Ok(page((items, next), |e| e).stream(slot))
}

/// The incident managers' queue: escalations, oldest first
///
/// Filter by kind, acknowledged or waiting, and incident.
///
/// Roles: staff.
#[utoipa::path(
    tag = "escalations",
    security(("bearer" = [])),
    params(ListEscalationsQuery, PageQuery),
    responses(
        (status = 200, description = "A page of escalations", body = Page<EscalationResponse>),
        problems::ListErrors
    )
)]
#[get("/escalations")]
pub async fn list_escalations(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<ListEscalationsQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let query = query.0;
    let filter = EscalationFilter {
        kind: query.kind,
        acknowledged: query.acknowledged,
        incident_id: query.incident_id,
    };
    list(&state, filter, paging.0, false).await
}

/// The escalations of one incident, oldest first
///
/// Roles: staff.
///
/// Errors: 404 `not_found` for no such incident.
#[utoipa::path(
    tag = "escalations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IncidentEscalationsQuery, PageQuery),
    responses(
        (status = 200, description = "A page of escalations", body = Page<EscalationResponse>),
        problems::ReadErrors, problems::ValidationFailed
    )
)]
#[get("/incidents/{id}/escalations")]
pub async fn list_incident_escalations(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    query: ValidQuery<IncidentEscalationsQuery>,
    paging: ValidQuery<PageQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let query = query.0;
    let filter = EscalationFilter {
        kind: query.kind,
        acknowledged: query.acknowledged,
        incident_id: Some(id.into_inner()),
    };
    list(&state, filter, paging.0, true).await
}

/// Acknowledge an escalation
///
/// An incident manager takes note of it; the queue shows it as handled.
///
/// Roles: `incident_manager`.
///
/// Errors: 409 `already_acknowledged`.
#[utoipa::path(
    tag = "escalations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Escalation id")),
    responses(
        (status = 200, description = "Acknowledged", body = EscalationResponse),
        problems::ReadErrors, problems::Conflict
    )
)]
#[post("/escalations/{id}/acknowledge")]
pub async fn acknowledge_escalation(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&[Role::IncidentManager])?;
    let id = id.into_inner();
    let now = state.clock.now();
    let row = store::run(&state.pool, move |conn| {
        store::escalations::acknowledge(conn, id, caller.id, now)
    })
    .await?;
    Ok(HttpResponse::Ok().json(row))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_escalation)
        .service(list_incident_escalations)
        .service(list_escalations)
        .service(acknowledge_escalation);
}
