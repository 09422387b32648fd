//! `POST /incidents`.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpResponse, post};

use super::requests::CreateIncidentRequest;
use super::{IncidentResponse, require_incident_reader, respond};
use crate::api::extract::{AuthUser, JsonBody};
use crate::api::problems;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// Record an incident (staff, customer users, integrations). Level and deadline follow
/// SPEC §4.1.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    request_body = CreateIncidentRequest,
    responses(
        (status = 201, description = "Incident recorded", body = IncidentResponse,
            headers(("ETag" = String, description = "Version"), ("Location" = String, description = "URL of the incident"))),
        problems::CreateErrors
    )
)]
#[post("/incidents")]
pub async fn create_incident(
    state: Data<AppState>,
    caller: AuthUser,
    body: JsonBody<CreateIncidentRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let draft = body.parse()?.into();
    let who = caller.caller();
    let settings = state.write_settings();
    let now = state.clock.now();
    let incident = store::run(&state.pool, move |conn| {
        store::incident_writes::create(conn, &who, draft, &settings, now)
    })
    .await?;
    Ok(respond(StatusCode::CREATED, incident, &caller, now))
}
