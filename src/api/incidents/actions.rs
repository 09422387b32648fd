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

/// Take a new incident into work: new → in_progress
///
/// The incident is assigned to the caller, or to `assignee_id` (a worker of its tier). The example
/// takes incident 1 as its recorder.
///
/// Roles: `service_desk` (tier l1), `l2_engineer` (tier l2), `incident_manager`.
///
/// Errors: 409 `illegal_transition` (with `state` and `allowed_actions`) when the incident is not
/// `new`; 409 `incident_closed`; 422 on `assignee_id` for someone who does not work the tier.
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

/// Record a workaround; the incident stays in_progress
///
/// A temporary measure that lets the customer work while the cause is sought; the deadline still
/// runs. The example follows `accept` on incident 1.
///
/// Roles: staff of the incident's tier (`service_desk` at l1, `l2_engineer` at l2),
/// `incident_manager`.
///
/// Errors: 409 `illegal_transition` unless `in_progress`.
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

/// Resolve: in_progress → resolved, with the solution and cause
///
/// The incident must be classified (category and subcategory, set now or before) and have no open
/// `customer_issue` coordination ticket. The reporter is then asked to confirm. The example
/// resolves incident 1 after its workaround.
///
/// Roles: staff of the incident's tier, `incident_manager`.
///
/// Errors: 409 `illegal_transition` unless `in_progress`; 409 `open_coordination_ticket`; 422 on
/// `category` when unclassified, or for a sub-cause of another cause.
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

/// The reporter confirms the resolution
///
/// A user-reported incident is closed only after this. The customer confirms in person, or the
/// service desk records the answer it received (with `channel`). The example confirms incident 1
/// once it is `resolved`.
///
/// Roles: `customer` (the incident's organisation), `service_desk`.
///
/// Errors: 409 `illegal_transition` unless `resolved` and not yet confirmed.
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

/// The reporter rejects the resolution: resolved → in_progress
///
/// Work resumes with the reason in the history; a confirmation given before is void. The example
/// works on any `resolved` incident.
///
/// Roles: `customer` (the incident's organisation), `service_desk`.
///
/// Errors: 409 `illegal_transition` unless `resolved`.
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

/// The reporter asks to drop the incident; the state stays
///
/// Records the request (`withdrawal_requested_at`, a public history entry); only then may the desk
/// close a user-reported incident as `withdrawn`. Customer users ask directly; the service desk
/// records a request it received, with `channel` and `note`. The example works on any `new` or
/// `in_progress` incident.
///
/// Roles: `customer` (the incident's organisation), `service_desk`.
///
/// Errors: 409 `illegal_transition` unless `new` or `in_progress`.
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

/// Hand the incident to another engineer of its tier
///
/// A shift change at l1, a specialist at l2; allowed in `new` and `in_progress`. An internal
/// history entry keeps the reason; emits `incident.assigned`. The example hands an incident to user
/// 3, another `service_desk` user.
///
/// Roles: staff of the incident's tier, `incident_manager`.
///
/// Errors: 409 `illegal_transition` in another state; 422 on `assignee_id` for someone inactive, of
/// another tier, or already assigned.
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

/// Close an incident; a closed incident never changes again
///
/// From `resolved` with `resolved` or `unresolved`: a user-reported incident only after the
/// reporter confirmed. From `new` or `in_progress` with `duplicate` (and `duplicate_of`) or
/// `withdrawn` (a user-reported incident only after the reporter asked). Open coordination tickets
/// of the incident are cancelled with it. A user-reported incident closed `resolved` or
/// `unresolved` is owed a follow-up. The example closes incident 1 after `confirm`.
///
/// Roles: `service_desk`.
///
/// Errors: 409 `confirmation_required` before the reporter confirmed or asked; 409
/// `illegal_transition` for a code that does not fit the state; 409 `incident_closed`.
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
