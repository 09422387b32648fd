//! Notes and history of an incident.

use crate::store::Connection as PgConnection;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};

use super::requests::CreateNoteRequest;
use super::types::{IncidentHistoryEntry, NoteResponse};
use super::{require_incident_reader, visible_incident};
use crate::api::extract::{AuthUser, JsonBody};
use crate::api::idempotency::{IdempotencyKey, json_answer, run_keyed};
use crate::api::problems;
use crate::domain::incident::NoteVisibility;
use crate::domain::workflow::IncidentCommand;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{self, StoreError};

/// What `load` finds beside incident `id` (notes, history), after the caller's visibility
/// check; `load` is told whether internal records are included (for staff only).
async fn beside_incident<T: Send + 'static>(
    state: &AppState,
    caller: &AuthUser,
    id: i64,
    load: fn(&mut PgConnection, i64, bool) -> Result<Vec<T>, StoreError>,
    may_lag: bool,
) -> Result<Vec<T>, AppError> {
    require_incident_reader(caller)?;
    let staff = caller.roles.is_staff();
    let who = caller.caller();
    let work = move |conn: &mut PgConnection| {
        visible_incident(conn, &who, id)?;
        Ok::<_, AppError>(load(conn, id, staff)?)
    };
    if may_lag {
        state.run_read(caller.id, work).await
    } else {
        store::run(&state.pool, work).await
    }
}

/// Add a note to an incident
///
/// Staff write `internal` or `public` notes; customer users write public notes on their
/// organisation's incidents. Emits `note.created`. The example adds a public note to any open
/// incident.
///
/// Roles: staff, `customer` (public notes, its own organisation).
///
/// Errors: 409 `incident_closed`; 403 for a customer's internal note.
#[utoipa::path(
    tag = "incidents",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id"), IdempotencyKey),
    request_body = CreateNoteRequest,
    responses(
        (status = 201, description = "Note added", body = NoteResponse),
        problems::CreateErrors, problems::NotFound, problems::Conflict
    )
)]
#[post("/incidents/{id}/notes")]
pub async fn add_note(
    http: HttpRequest,
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
        attachment_ids: request.attachment_ids.unwrap_or_default(),
    };
    let (id, who, settings, now) = (
        id.into_inner(),
        caller.caller(),
        state.write_settings(),
        state.clock.now(),
    );
    run_keyed(&http, &state, move |conn| {
        let applied =
            store::incident_writes::execute(conn, id, None, &who, command, &settings, now)?;
        let written = applied
            .note
            .ok_or_else(|| AppError::internal("the note was not written"))?;
        json_answer(StatusCode::CREATED, None, None, &written)
    })
    .await
}

/// An incident's notes, oldest first
///
/// Customer users see public notes only.
///
/// Roles: staff, `integration`, `customer` (its own organisation).
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
    let notes = beside_incident(
        &state,
        &caller,
        id.into_inner(),
        store::incidents::notes,
        false,
    )
    .await?;
    let notes: Vec<NoteResponse> = notes;
    Ok(HttpResponse::Ok().json(notes))
}

/// An incident's append-only history, oldest first
///
/// Every entry has a `visibility`. Staff read every entry. Customer users (and integrations) read
/// the `public` ones only: created, public notes, accept (without the assignee), level changes
/// (without the reason), workaround, resolve, confirm, reject-resolution, withdraw, close (closure
/// code and, for a duplicate, the surviving incident's number), occurrences appended. They never
/// read the desk's internal work: escalations and their diagnosis, assignments, SLA warnings,
/// coordination results, internal notes, edits other than of the reporter's own details.
///
/// Roles: staff, `integration`, `customer` (its own organisation).
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
    let rows = beside_incident(
        &state,
        &caller,
        id.into_inner(),
        store::incidents::history,
        true,
    )
    .await?;
    let staff = caller.roles.is_staff();
    let entries: Vec<IncidentHistoryEntry> = rows
        .into_iter()
        .map(|row| IncidentHistoryEntry::new(row, staff))
        .collect();
    Ok(HttpResponse::Ok().json(entries))
}
