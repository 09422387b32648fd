//! The actions of SPEC §4.2: `POST /incidents/{id}/<action>`. Each handler reads its body into
//! the domain command; [`act`] runs it and answers the incident as it now is.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, post};

use super::requests::{
    AcceptRequest, AssignRequest, CloseRequest, ConfirmRequest, RejectResolutionRequest,
    ResolveRequest, WithdrawRequest, WorkaroundRequest,
};
use super::{IncidentResponse, execute, require_incident_reader, respond};
use crate::api::extract::{AuthUser, IfMatch, JsonBody};
use crate::api::problems;
use crate::domain::workflow::IncidentCommand;
use crate::error::AppError;
use crate::state::AppState;

/// Runs `command` on incident `id` for `caller` and answers the incident with its new `ETag`.
async fn act(
    state: &AppState,
    caller: &AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    command: IncidentCommand,
) -> Result<HttpResponse, AppError> {
    let applied = execute(state, caller, id.into_inner(), if_match, command).await?;
    Ok(respond(
        applied.incident,
        applied.open_customer_issue,
        caller,
        state.clock.now(),
    ))
}

/// Take a new incident into work: `new` → `in_progress`. Service desk (tier l1), L2
/// engineer (tier l2) or incident manager.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IfMatch),
    request_body = AcceptRequest,
    responses(
        (status = 200, description = "Accepted", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::IncidentActionErrors
    )
)]
#[post("/incidents/{id}/accept")]
pub async fn accept_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<AcceptRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    act(
        &state,
        &caller,
        id,
        if_match,
        body.parse_or_default()?.into(),
    )
    .await
}

/// Record a workaround; the incident stays `in_progress` (procedure §4.1). Staff on the
/// incident's tier or an incident manager.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IfMatch),
    request_body = WorkaroundRequest,
    responses(
        (status = 200, description = "Workaround recorded", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::IncidentActionErrors
    )
)]
#[post("/incidents/{id}/workaround")]
pub async fn record_workaround(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<WorkaroundRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    act(&state, &caller, id, if_match, body.parse()?.into()).await
}

/// Resolve: `in_progress` → `resolved`, with the solution and cause. The incident must be
/// classified (here or before). Service desk (tier l1), L2 engineer (tier l2) or incident
/// manager.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IfMatch),
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "Resolved; waiting for the reporter's confirmation", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::IncidentActionErrors
    )
)]
#[post("/incidents/{id}/resolve")]
pub async fn resolve_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<ResolveRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    act(&state, &caller, id, if_match, body.parse()?.into()).await
}

/// The reporter confirms the resolution (its customer users, or the service desk recording
/// the answer). Required before a user-reported incident is closed.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IfMatch),
    request_body = ConfirmRequest,
    responses(
        (status = 200, description = "Confirmation recorded", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::IncidentActionErrors
    )
)]
#[post("/incidents/{id}/confirm")]
pub async fn confirm_resolution(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<ConfirmRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    act(
        &state,
        &caller,
        id,
        if_match,
        body.parse_or_default()?.into(),
    )
    .await
}

/// The reporter rejects the resolution: `resolved` → `in_progress` (its customer users, or
/// the service desk recording the answer).
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IfMatch),
    request_body = RejectResolutionRequest,
    responses(
        (status = 200, description = "Back in progress", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::IncidentActionErrors
    )
)]
#[post("/incidents/{id}/reject-resolution")]
pub async fn reject_resolution(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<RejectResolutionRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    act(&state, &caller, id, if_match, body.parse()?.into()).await
}

/// The reporter asks to drop the incident (`new` or `in_progress`; the state stays). Its
/// customer users ask directly; the service desk records a request it received, with
/// `channel` and `note`. Sets `withdrawal_requested_at` (a public history entry); only then
/// may the desk close a user-reported incident as `withdrawn`.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IfMatch),
    request_body = WithdrawRequest,
    responses(
        (status = 200, description = "Withdrawal requested", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::IncidentActionErrors
    )
)]
#[post("/incidents/{id}/withdraw")]
pub async fn withdraw_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<WithdrawRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    act(
        &state,
        &caller,
        id,
        if_match,
        body.parse_or_default()?.into(),
    )
    .await
}

/// Hand the incident to another engineer of its tier (`new` or `in_progress`): a shift
/// change at L1, a specialist at L2. Incident managers, or staff on the incident's tier.
/// The assignee is an active `service_desk` user (tier l1) or `l2_engineer` (tier l2),
/// else 422 on `assignee_id`. An internal history entry with the reason; emits
/// `incident.assigned`.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IfMatch),
    request_body = AssignRequest,
    responses(
        (status = 200, description = "Assigned", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::IncidentActionErrors
    )
)]
#[post("/incidents/{id}/assign")]
pub async fn assign_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<AssignRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    act(&state, &caller, id, if_match, body.parse()?.into()).await
}

/// Close (service desk only). From `resolved` with `resolved` or `unresolved` — a
/// user-reported incident only after the reporter confirmed (else 409
/// `confirmation_required`); from `new` or `in_progress` with `duplicate` (and
/// `duplicate_of`; the history names the surviving incident) or `withdrawn` (and `note`; a
/// user-reported incident only after the reporter asked, else 409 `confirmation_required`).
/// Open or accepted coordination tickets of the incident are cancelled with it. A closed
/// incident never changes again.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IfMatch),
    request_body = CloseRequest,
    responses(
        (status = 200, description = "Closed", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::IncidentActionErrors
    )
)]
#[post("/incidents/{id}/close")]
pub async fn close_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<CloseRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    act(&state, &caller, id, if_match, body.parse()?.into()).await
}
