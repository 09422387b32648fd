//! Notes and history of an incident.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get, post};
use diesel::PgConnection;

use super::requests::CreateNoteRequest;
use super::types::{IncidentHistoryEntry, NoteResponse};
use super::{execute, require_incident_reader};
use crate::api::extract::{AuthUser, IfMatch, JsonBody};
use crate::api::problems;
use crate::domain::incident::NoteVisibility;
use crate::domain::workflow::{Caller, IncidentCommand};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// 404 unless incident `id` exists and `caller` may see it.
fn visible_incident(conn: &mut PgConnection, caller: &Caller, id: i64) -> Result<(), AppError> {
    let incident = store::incidents::find(conn, id)?;
    if caller.sees(&incident) {
        Ok(())
    } else {
        Err(AppError::not_found("incident", id))
    }
}

/// Add a note. Staff write internal or public notes; customer users public ones on their
/// organisation's incidents. Closed incidents take no more notes.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    request_body = CreateNoteRequest,
    responses(
        (status = 201, description = "Note added", body = NoteResponse),
        problems::CreateErrors, problems::NotFound, problems::Conflict
    )
)]
#[post("/incidents/{id}/notes")]
pub async fn add_note(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    body: JsonBody<CreateNoteRequest>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let request = body.parse()?;
    let visibility = request.visibility.unwrap_or(if caller.roles.is_staff() {
        NoteVisibility::Internal
    } else {
        NoteVisibility::Public
    });
    let command = IncidentCommand::AddNote {
        visibility,
        body: request.body,
    };
    let applied = execute(&state, &caller, id.into_inner(), IfMatch(None), command).await?;
    let written = applied
        .note
        .ok_or_else(|| AppError::internal("the note was not written"))?;
    Ok(HttpResponse::Created().json(NoteResponse::from(written)))
}

/// The incident's notes, oldest first; customer users see public notes only.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "Notes, oldest first", body = Vec<NoteResponse>),
        problems::ReadErrors
    )
)]
#[get("/incidents/{id}/notes")]
pub async fn list_notes(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let id = id.into_inner();
    let staff = caller.roles.is_staff();
    let who = caller.caller();
    let notes = store::run(&state.pool, move |conn| {
        visible_incident(conn, &who, id)?;
        store::incidents::notes(conn, id, staff)
    })
    .await?;
    let notes: Vec<NoteResponse> = notes.into_iter().map(NoteResponse::from).collect();
    Ok(HttpResponse::Ok().json(notes))
}

/// The incident's append-only history, oldest first. Customer users do not see entries about
/// internal notes.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "History, oldest first", body = Vec<IncidentHistoryEntry>),
        problems::ReadErrors
    )
)]
#[get("/incidents/{id}/history")]
pub async fn get_incident_history(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    require_incident_reader(&caller)?;
    let id = id.into_inner();
    let staff = caller.roles.is_staff();
    let who = caller.caller();
    let rows = store::run(&state.pool, move |conn| {
        visible_incident(conn, &who, id)?;
        store::incidents::history(conn, id, staff)
    })
    .await?;
    let entries: Vec<IncidentHistoryEntry> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(entries))
}
