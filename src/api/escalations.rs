//! Escalations (SPEC §5): functional (L1 → L2), priority (level changes) and hierarchical (to the
//! incident managers), and the managers' queue.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get, post};
use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::{Validate, ValidationErrors};

use super::AppState;
use super::extract::{AuthUser, IfMatch, JsonBody, ValidQuery, parse_stored};
use super::incidents::{Change, act_on};
use super::pagination::{Page, page, page_request};
use crate::domain::incident::Tier;
use crate::domain::level::Level;
use crate::domain::role::Role;
use crate::domain::sla;
use crate::domain::state_machine::{Command, Escalation};
use crate::domain::validation::check_text;
use crate::error::AppError;
use crate::store;
use crate::store::escalations::{EscalationFilter, EscalationRow, NewEscalation};
use crate::store::incidents::IncidentRow;

/// Kinds of escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EscalationKind {
    /// L1 → L2.
    Functional,
    /// Level change.
    Priority,
    /// To the incident managers.
    Hierarchical,
}

/// Why a priority escalation happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorityTrigger {
    /// On-site work is held up.
    OnsiteUrgent,
    /// The data upload is held up.
    DataUpload,
    /// A person decided.
    Manual,
}

/// A new escalation, by kind.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateEscalationRequest {
    /// L1 → L2: the incident moves to tier l2, in progress, assigned to an L2 engineer.
    Functional {
        /// An active `l2_engineer`.
        assignee_id: i64,
        /// What L1 found and tried (初步解决判断的步骤), 1–10 000 characters.
        #[schema(min_length = 1, max_length = 10000)]
        diagnosis: String,
    },
    /// A level change; the deadline is recomputed (SPEC §4.1). Raising: any staff but ops
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

/// An escalation record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EscalationResponse {
    /// Id.
    pub id: i64,
    /// Incident.
    pub incident_id: i64,
    /// Kind.
    pub kind: EscalationKind,
    /// `onsite_urgent`, `data_upload`, `manual`, `sla_warning` or `sla_breach`.
    #[schema(example = "manual")]
    pub trigger: Option<String>,
    /// Reason, or the diagnosis of a functional escalation.
    pub reason: Option<String>,
    /// Tier before.
    pub from_tier: Tier,
    /// Tier after.
    pub to_tier: Tier,
    /// Level before.
    pub from_level: Level,
    /// Level after.
    pub to_level: Level,
    /// Assignee before.
    pub from_assignee_id: Option<i64>,
    /// Assignee after.
    pub to_assignee_id: Option<i64>,
    /// The deadline an SLA escalation is about.
    pub due_at: Option<DateTime<Utc>>,
    /// Who escalated; `null` for the SLA watcher.
    pub created_by: Option<i64>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Incident manager who acknowledged it.
    pub acknowledged_by: Option<i64>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
}

impl TryFrom<EscalationRow> for EscalationResponse {
    type Error = AppError;

    fn try_from(row: EscalationRow) -> Result<Self, AppError> {
        Ok(EscalationResponse {
            kind: serde_json::from_value(serde_json::Value::String(row.kind.clone()))
                .map_err(AppError::internal)?,
            from_tier: parse_stored(&row.from_tier)?,
            to_tier: parse_stored(&row.to_tier)?,
            from_level: parse_stored(&row.from_level)?,
            to_level: parse_stored(&row.to_level)?,
            id: row.id,
            incident_id: row.incident_id,
            trigger: row.trigger,
            reason: row.reason,
            from_assignee_id: row.from_assignee_id,
            to_assignee_id: row.to_assignee_id,
            due_at: row.due_at,
            created_by: row.created_by,
            created_at: row.created_at,
            acknowledged_by: row.acknowledged_by,
            acknowledged_at: row.acknowledged_at,
        })
    }
}

/// The record of an escalation from `current` to `next`.
pub(crate) fn record_of(
    current: &IncidentRow,
    next: &IncidentRow,
    kind: &str,
    trigger: Option<&str>,
    reason: Option<String>,
    actor: Option<i64>,
    now: DateTime<Utc>,
) -> NewEscalation {
    NewEscalation {
        incident_id: current.id,
        kind: kind.to_owned(),
        trigger: trigger.map(str::to_owned),
        reason,
        from_tier: current.tier.clone(),
        to_tier: next.tier.clone(),
        from_level: current.level.clone(),
        to_level: next.level.clone(),
        from_assignee_id: current.assignee_id,
        to_assignee_id: next.assignee_id,
        due_at: None,
        created_by: actor,
        created_at: now,
    }
}

/// Changes `next` to `level` with the deadline of SPEC §4.1: raising never extends it (and
/// respects the upload cut-off), lowering counts again from creation.
pub(crate) fn change_level(
    conn: &mut PgConnection,
    state: &AppState,
    next: &mut IncidentRow,
    current: &IncidentRow,
    level: Level,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let before: Level = parse_stored(&current.level)?;
    let deadlines = store::calendar::deadlines(conn, state.settings.timezone)?;
    next.due_at = if level > before {
        let raised = sla::raised_due_at(current.due_at, now, &deadlines, level);
        match state.settings.upload_cutoff {
            Some(time) if next.affects_data_upload => raised.min(sla::next_cutoff(
                now,
                sla::UploadCutoff {
                    time,
                    timezone: state.settings.timezone,
                },
            )),
            _ => raised,
        }
    } else {
        sla::lowered_due_at(current.created_at, &deadlines, level)
    };
    next.level = level.as_str().to_owned();
    Ok(())
}

fn reason_error(field: &str, text: &str) -> Result<(), AppError> {
    check_text(field, text, 10_000).map_err(|e| AppError::Validation(vec![e]))
}

/// Escalate an incident. Each escalation is recorded with the incident change and its history
/// entry in one transaction; a closed incident answers 409 `incident_closed`.
#[utoipa::path(
    tag = "escalations",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Incident id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "ETag of the incident version this is based on", pattern = "^(W/)?\"[0-9]+\"$")
    ),
    request_body = CreateEscalationRequest,
    responses(
        (status = 201, description = "Escalated", body = EscalationResponse),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, description = "`incident_closed` or `illegal_transition`", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 412, response = crate::openapi::VersionMismatch),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[post("/incidents/{id}/escalations")]
pub async fn create_escalation(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<CreateEscalationRequest>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    let request = body.parse()?;
    match &request {
        CreateEscalationRequest::Functional { diagnosis, .. } => {
            reason_error("diagnosis", diagnosis)?
        }
        CreateEscalationRequest::Priority { reason, .. }
        | CreateEscalationRequest::Hierarchical { reason } => reason_error("reason", reason)?,
    }
    let now = state.clock.now();
    let actor = caller.id;
    let level_of = |row: &IncidentRow| row.level.parse::<Level>().unwrap_or(Level::Low);
    let choose = {
        let kind = match &request {
            CreateEscalationRequest::Functional { .. } => None,
            CreateEscalationRequest::Priority { level, .. } => Some(*level),
            CreateEscalationRequest::Hierarchical { .. } => None,
        };
        let functional = matches!(request, CreateEscalationRequest::Functional { .. });
        move |row: &IncidentRow| match (kind, functional) {
            (Some(level), _) if level < level_of(row) => Command::Escalate(Escalation::LowerLevel),
            (Some(_), _) => Command::Escalate(Escalation::RaiseLevel),
            (None, true) => Command::Escalate(Escalation::Functional),
            (None, false) => Command::Escalate(Escalation::Hierarchical),
        }
    };
    let state_for_change = state.clone();
    let applied = act_on(
        &state,
        &caller,
        id.into_inner(),
        if_match,
        choose,
        now,
        move |conn, current, next| {
            let escalation = match request {
                CreateEscalationRequest::Functional {
                    assignee_id,
                    diagnosis,
                } => {
                    let assignee = store::users::find(conn, assignee_id).ok();
                    if !assignee.is_some_and(|u| u.active && u.roles().has(Role::L2Engineer)) {
                        return Err(AppError::invalid_field(
                            "assignee_id",
                            "invalid",
                            "the assignee must be an active l2_engineer",
                        ));
                    }
                    next.tier = Tier::L2.as_str().to_owned();
                    next.assignee_id = Some(assignee_id);
                    next.accepted_at = current.accepted_at.or(Some(now));
                    record_of(
                        current,
                        next,
                        "functional",
                        None,
                        Some(diagnosis),
                        Some(actor),
                        now,
                    )
                }
                CreateEscalationRequest::Priority {
                    level,
                    reason,
                    trigger,
                } => {
                    if level == level_of(current) {
                        return Err(AppError::invalid_field(
                            "level",
                            "unchanged",
                            format!("the incident is already {level}"),
                        ));
                    }
                    change_level(conn, &state_for_change, next, current, level, now)?;
                    let trigger = match trigger.unwrap_or(PriorityTrigger::Manual) {
                        PriorityTrigger::OnsiteUrgent => "onsite_urgent",
                        PriorityTrigger::DataUpload => "data_upload",
                        PriorityTrigger::Manual => "manual",
                    };
                    record_of(
                        current,
                        next,
                        "priority",
                        Some(trigger),
                        Some(reason),
                        Some(actor),
                        now,
                    )
                }
                CreateEscalationRequest::Hierarchical { reason } => record_of(
                    current,
                    next,
                    "hierarchical",
                    None,
                    Some(reason),
                    Some(actor),
                    now,
                ),
            };
            Ok(Change {
                comment: escalation.reason.clone(),
                escalation: Some(escalation),
                ..Change::default()
            })
        },
    )
    .await?;
    let escalation = applied
        .escalation
        .ok_or_else(|| AppError::internal("the escalation was not recorded"))?;
    Ok(HttpResponse::Created()
        .insert_header(super::extract::etag(applied.row.version))
        .json(EscalationResponse::try_from(escalation)?))
}

/// Filters of the escalation lists.
#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListEscalationsQuery {
    /// Kind.
    pub kind: Option<EscalationKind>,
    /// Acknowledged (`true`) or waiting (`false`).
    pub acknowledged: Option<bool>,
    /// Escalations of this incident.
    pub incident_id: Option<i64>,
    /// Rows per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

async fn list(
    state: &AppState,
    query: ListEscalationsQuery,
    incident_id: Option<i64>,
) -> Result<HttpResponse, AppError> {
    let page_req = page_request(query.limit, query.cursor.as_deref())?;
    let filter = EscalationFilter {
        kind: query.kind.map(|k| {
            serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }),
        acknowledged: query.acknowledged,
        incident_id: incident_id.or(query.incident_id),
    };
    let (rows, next) = store::run(&state.pool, move |conn| {
        if let Some(id) = incident_id {
            store::incidents::find(conn, id)?;
        }
        store::escalations::list(conn, &filter, page_req)
    })
    .await?;
    let items = rows
        .into_iter()
        .map(EscalationResponse::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(page((items, next), |e| e)))
}

/// The incident managers' queue: escalations, oldest first (staff).
#[utoipa::path(
    tag = "escalations",
    security(("bearer" = [])),
    params(ListEscalationsQuery),
    responses(
        (status = 200, description = "A page of escalations", body = Page<EscalationResponse>),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[get("/escalations")]
pub async fn list_escalations(
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<ListEscalationsQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    list(&state, query.0, None).await
}

/// The escalations of one incident, oldest first (staff).
#[utoipa::path(
    tag = "escalations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), ListEscalationsQuery),
    responses(
        (status = 200, description = "A page of escalations", body = Page<EscalationResponse>),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)
    )
)]
#[get("/incidents/{id}/escalations")]
pub async fn list_incident_escalations(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    query: ValidQuery<ListEscalationsQuery>,
) -> Result<HttpResponse, AppError> {
    caller.require_any(&Role::STAFF)?;
    list(&state, query.0, Some(id.into_inner())).await
}

/// Acknowledge an escalation (incident managers).
#[utoipa::path(
    tag = "escalations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Escalation id")),
    responses(
        (status = 200, description = "Acknowledged", body = EscalationResponse),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 503, response = crate::openapi::Unavailable)
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
    Ok(HttpResponse::Ok().json(EscalationResponse::try_from(row)?))
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_escalation)
        .service(list_incident_escalations)
        .service(list_escalations)
        .service(acknowledge_escalation);
}
