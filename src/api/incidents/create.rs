//! `POST /incidents`.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, post};
use serde::Deserialize;
use utoipa::IntoParams;
use validator::Validate;

use super::requests::CreateIncidentRequest;
use super::{IncidentResponse, require_incident_reader, stored_answer};
use crate::api::extract::{AuthUser, JsonBody, ValidQuery};
use crate::api::idempotency::{IdempotencyKey, run_keyed};
use crate::api::problems;
use crate::domain::workflow::OnDuplicate;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::incident_writes::Reported;

/// What to do when the report duplicates an unresolved incident.
#[derive(Debug, Default, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateIncidentQuery {
    /// `append` records the report on the unresolved incident it duplicates (one more
    /// occurrence, answered 200 with that incident); `create` opens a new incident anyway.
    /// Without it a duplicate is refused with 409 `duplicate_incident` naming `duplicate_of`.
    #[param(inline)]
    pub on_duplicate: Option<OnDuplicate>,
}

/// Record an incident
///
/// Level and deadline follow the rules: the given `level`, else the subcategory's default, else
/// `low`; an incident that holds up the data upload is `high`, one that holds up on-site work at
/// least `medium`; the deadline is the level's resolution target from now. Someone other than the
/// reporter's organisation gives `reporter` (name and phone or e-mail). A report is a duplicate
/// when an unresolved incident has the same customer, `source_system`, `ci_id` and `subcategory`:
/// choose with `on_duplicate` to `append` (recorded on it, 200) or `create` anyway. The example
/// records incident 1 as the service desk user of the `POST /users` example.
///
/// Roles: staff, `customer` (its own organisation), `integration`.
///
/// Errors: 409 `duplicate_incident` with `duplicate_of` when `on_duplicate` is not given; 422
/// `validation_failed` for a bad field, an unknown or foreign customer or configuration item, or a
/// missing reporter.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(CreateIncidentQuery, IdempotencyKey),
    request_body = CreateIncidentRequest,
    responses(
        (status = 201, description = "Incident recorded", body = IncidentResponse,
            headers(("ETag" = String, description = "Version"), ("Location" = String, description = "URL of the incident"))),
        (status = 200, description = "`on_duplicate=append`: the report was recorded on the unresolved incident it duplicates, returned here", body = IncidentResponse,
            headers(("ETag" = String, description = "Version"))),
        (status = 409, description = "The report duplicates an unresolved incident, named in `duplicate_of` (`duplicate_incident`)", body = crate::error::Problem,
            content_type = "application/problem+json",
            example = json!({"type": "urn:incident-desk:problem:duplicate_incident", "title": "Duplicate incident", "status": 409,
                "detail": "Unresolved incident 42 has the same customer, system, configuration item and subcategory. Retry with ?on_duplicate=append to record this report on it, or ?on_duplicate=create to open a new incident anyway.",
                "code": "duplicate_incident", "duplicate_of": 42})),
        problems::CreateErrors
    )
)]
#[post("/incidents")]
pub async fn create_incident(
    request: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    query: ValidQuery<CreateIncidentQuery>,
    body: JsonBody<CreateIncidentRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let draft = body.parse()?.into();
    let on_duplicate = query.0.on_duplicate;
    let who = caller.caller();
    let settings = state.write_settings();
    let now = state.clock.now();
    // With a key, the answer is kept in the transaction that records the incident, so a retry
    // after a crash between commit and answer gets this answer, not a second incident.
    run_keyed(&request, &state, move |conn| {
        let reported =
            store::incident_writes::create(conn, &who, draft, on_duplicate, &settings, now)?;
        match reported {
            Reported::Created(incident) => {
                stored_answer(StatusCode::CREATED, incident, false, &who, now)
            }
            Reported::Appended {
                incident,
                open_customer_issue,
            } => stored_answer(StatusCode::OK, incident, open_customer_issue, &who, now),
        }
    })
    .await
}
