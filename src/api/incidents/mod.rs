//! `/api/v1/incidents`: recording, working, resolving, confirming and closing incidents
//! (SPEC §4). Handlers only extract, authorise, validate the shape of the request and map the
//! answer; what a write may do is decided by `domain::workflow` inside the store's transaction.

mod actions;
mod create;
mod notes;
mod read;
mod record;
mod requests;
mod types;
mod update;

pub use actions::{
    accept_incident, assign_incident, close_incident, confirm_resolution, record_workaround,
    reject_resolution, resolve_incident, withdraw_incident,
};
pub use create::create_incident;
pub use notes::{add_note, get_incident_history, list_notes};
pub use read::{get_incident, list_incidents};
pub use record::get_incident_record;
pub use requests::{
    AcceptRequest, AssignRequest, CloseRequest, ConfirmRequest, CreateIncidentRequest,
    CreateNoteRequest, IncidentSort, ListIncidentsQuery, RejectResolutionRequest, ResolveRequest,
    UpdateIncidentRequest, WithdrawRequest, WorkaroundRequest,
};
pub use types::{IncidentHistoryEntry, IncidentResponse, NoteResponse};
pub use update::update_incident;

use crate::store::Connection as PgConnection;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{AuthUser, IfMatch};
use crate::api::respond::versioned;
use crate::domain::incident::Incident;
use crate::domain::role::Role;
use crate::domain::workflow::{Caller, IncidentCommand};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::incident_writes::Applied;

/// Who may see incidents at all: staff, customer users, integrations.
fn require_incident_reader(caller: &AuthUser) -> Result<(), AppError> {
    caller.require_any(&Role::INCIDENT_READERS)
}

/// Incident `id`, unless `caller` may not know it exists (404 either way).
fn visible_incident(
    conn: &mut PgConnection,
    caller: &Caller,
    id: i64,
) -> Result<Incident, AppError> {
    visible(caller, store::incidents::find(conn, id)?)
}

/// `incident` when `caller` may see it; otherwise 404, as if there were none.
fn visible(caller: &Caller, incident: Incident) -> Result<Incident, AppError> {
    if caller.sees(&incident) {
        Ok(incident)
    } else {
        Err(AppError::not_found("incident", incident.id))
    }
}

/// Runs `command` by `caller` on incident `id`: one blocking hop, one transaction.
pub(crate) async fn execute(
    state: &AppState,
    caller: &AuthUser,
    id: i64,
    if_match: IfMatch,
    command: IncidentCommand,
) -> Result<Applied, AppError> {
    let who = caller.caller();
    let settings = state.write_settings();
    let now = state.clock.now();
    let applied = store::run(&state.pool, move |conn| {
        store::incident_writes::execute(conn, id, if_match.0, &who, command, &settings, now)
    })
    .await?;
    Ok(applied)
}

/// The incident as JSON with its `ETag`.
fn respond(
    incident: Incident,
    open_customer_issue: bool,
    caller: &AuthUser,
    now: DateTime<Utc>,
) -> HttpResponse {
    let body = IncidentResponse::new(incident, &caller.caller(), now, open_customer_issue);
    versioned(body.incident.incident.version, body)
}

/// The incident as the JSON answer `respond` sends, kept as bytes with its headers (for an
/// answer an `Idempotency-Key` replays).
fn stored_answer(
    status: StatusCode,
    incident: Incident,
    open_customer_issue: bool,
    caller: &crate::domain::workflow::Caller,
    now: DateTime<Utc>,
) -> Result<crate::store::idempotency::StoredResponse, AppError> {
    let body = IncidentResponse::new(incident, caller, now, open_customer_issue);
    let location = (status == StatusCode::CREATED)
        .then(|| format!("/api/v1/incidents/{}", body.incident.incident.id));
    crate::api::idempotency::json_answer(
        status,
        Some(body.incident.incident.version),
        location,
        &body,
    )
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_incident)
        .service(list_incidents)
        .service(get_incident)
        .service(get_incident_record)
        .service(update_incident)
        .service(accept_incident)
        .service(record_workaround)
        .service(resolve_incident)
        .service(confirm_resolution)
        .service(reject_resolution)
        .service(withdraw_incident)
        .service(assign_incident)
        .service(close_incident)
        .service(add_note)
        .service(list_notes)
        .service(get_incident_history);
}
