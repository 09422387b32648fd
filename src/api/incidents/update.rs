//! `PATCH /incidents/{id}`.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, patch};

use super::requests::{UpdateIncidentRequest, validate_patch};
use super::{IncidentResponse, execute, require_incident_reader, respond};
use crate::api::extract::{AuthUser, IfMatch, JsonBody};
use crate::api::problems;
use crate::error::AppError;
use crate::state::AppState;

/// Change an incident's descriptive fields
///
/// Title, description, reporter, customer, configuration item, classification and impact flags;
/// only the fields sent change, `null` clears an optional one. Level and tier change only through
/// escalations. Setting an impact flag re-grades the level as at recording. The example works on
/// any open incident.
///
/// Roles: staff.
///
/// Errors: 409 `incident_closed` on a closed incident; 412 `version_mismatch` for a stale
/// `If-Match`; 422 `validation_failed` for a bad field.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Incident id"),
        IfMatch
    ),
    request_body = UpdateIncidentRequest,
    responses(
        (status = 200, description = "The changed incident", body = IncidentResponse,
            headers(("ETag" = String, description = "New version"))),
        problems::UpdateErrors, problems::Conflict
    )
)]
#[patch("/incidents/{id}")]
pub async fn update_incident(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    if_match: IfMatch,
    body: JsonBody<UpdateIncidentRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let request = body.parse()?;
    validate_patch(&request)?;
    let applied = execute(&state, &caller, id.into_inner(), if_match, request.into()).await?;
    Ok(respond(
        applied.incident,
        applied.open_customer_issue,
        &caller,
        state.clock.now(),
    ))
}
