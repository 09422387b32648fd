//! Attachments (SPEC §13): uploads to incidents, coordination tickets and knowledge entries,
//! their lists and records, the download (with `Range`), and removal.
//!
//! An upload is read part by part and stored chunk by chunk as it arrives (`store::attachments`),
//! so memory stays flat whatever the file size and a file over `MAX_ATTACHMENT_SIZE` is refused
//! as soon as its bytes pass the limit.

mod download;
mod upload;

pub use download::{FileBytes, download_attachment};
pub use upload::{
    UploadForm, Uploaded, upload_incident_attachments, upload_knowledge_attachments,
    upload_ticket_attachments,
};

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::AuthUser;
use super::pagination::Page;
use crate::api::problems;
use crate::domain::attachment::{Attachment, Owner, OwnerKind};
use crate::domain::knowledge;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// Forgets the chunks of contents whose rows are gone (nothing is left to do in PostgreSQL,
/// where they went with the rows); a failure is logged.
async fn forget(state: &AppState, contents: Vec<i64>) {
    if contents.is_empty() {
        return;
    }
    if let Err(error) = state.chunks.forget(contents).await {
        log::warn!("forgetting removed attachment bytes failed: {error}");
    }
}

/// Who may use `owner`'s attachments at all, by role: incidents' readers, staff for tickets,
/// knowledge readers for entries.
fn require_reader(caller: &AuthUser, kind: OwnerKind) -> Result<(), AppError> {
    match kind {
        OwnerKind::Incident => caller.require_any(&Role::INCIDENT_READERS),
        OwnerKind::CoordinationTicket => caller.require_any(&Role::STAFF),
        OwnerKind::KnowledgeEntry => caller.require_any(&knowledge::READERS),
    }
}

async fn list(state: &AppState, caller: &AuthUser, owner: Owner) -> Result<HttpResponse, AppError> {
    require_reader(caller, owner.kind)?;
    let who = caller.caller();
    let items = store::run(&state.pool, move |conn| {
        store::attachments::visible_list(conn, owner, &who)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

fn incident(id: i64) -> Owner {
    Owner {
        kind: OwnerKind::Incident,
        id,
    }
}

fn ticket(id: i64) -> Owner {
    Owner {
        kind: OwnerKind::CoordinationTicket,
        id,
    }
}

fn entry(id: i64) -> Owner {
    Owner {
        kind: OwnerKind::KnowledgeEntry,
        id,
    }
}

/// An incident's attachments
///
/// Oldest first, all in one page (an incident holds at most 50). Customer users see the public
/// files of their own organisation's incidents.
///
/// Roles: staff, `integration`, `customer` (its own organisation).
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The attachments", body = Page<Attachment>),
        problems::ReadErrors
    )
)]
#[get("/incidents/{id}/attachments")]
pub async fn list_incident_attachments(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    list(&state, &caller, incident(id.into_inner())).await
}

/// A coordination ticket's attachments
///
/// Oldest first, all in one page.
///
/// Roles: staff.
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Coordination ticket id")),
    responses(
        (status = 200, description = "The attachments", body = Page<Attachment>),
        problems::ReadErrors
    )
)]
#[get("/coordination-tickets/{id}/attachments")]
pub async fn list_ticket_attachments(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    list(&state, &caller, ticket(id.into_inner())).await
}

/// A knowledge entry's attachments
///
/// Oldest first, all in one page. Customer users see the public files of published entries.
///
/// Roles: knowledge readers.
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Knowledge entry id")),
    responses(
        (status = 200, description = "The attachments", body = Page<Attachment>),
        problems::ReadErrors
    )
)]
#[get("/knowledge/{id}/attachments")]
pub async fn list_knowledge_attachments(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    list(&state, &caller, entry(id.into_inner())).await
}

/// Attachment `id` with its bytes' location, when `caller` may read it (404 otherwise).
async fn readable(
    state: &AppState,
    caller: &AuthUser,
    id: i64,
) -> Result<store::attachments::Found, AppError> {
    let who = caller.caller();
    let found = store::run(&state.pool, move |conn| store::attachments::find(conn, id)).await?;
    let by_role = require_reader(caller, found.attachment.owner.kind).is_ok();
    if by_role && store::attachments::readable_by(&who, &found) {
        Ok(found)
    } else {
        Err(AppError::not_found("attachment", id))
    }
}

/// An attachment's record
///
/// Who may read it: as for its owner's notes: customer users read public files of their own
/// organisation's incidents (and of published knowledge entries); anything else is 404.
///
/// Roles: staff, `integration`, `customer`.
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Attachment id")),
    responses(
        (status = 200, description = "The attachment", body = Attachment),
        problems::ReadErrors
    )
)]
#[get("/attachments/{id}")]
pub async fn get_attachment(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let found = readable(&state, &caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(found.attachment))
}

/// Remove an attachment
///
/// The record goes, with a history entry and `attachment.deleted`; the bytes go when no other
/// attachment names them. A closed incident's files are part of its record and never change.
///
/// Roles: its uploader, or staff (for a knowledge entry: its author while a `draft`).
///
/// Errors: 403; 404 for no such file or one the caller may not see; 409 `incident_closed`.
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Attachment id")),
    responses(
        (status = 204, description = "Removed"),
        problems::DeleteAttachmentErrors
    )
)]
#[delete("/attachments/{id}")]
pub async fn delete_attachment(
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let who = caller.caller();
    let now = state.clock.now();
    // Roles that read no owner's files learn nothing about this one: 404, as for a read.
    let reads_owner_kind = move |kind| require_reader(&caller, kind).is_ok();
    let (_, removed) = store::run(&state.pool, move |conn| {
        store::attachments::delete(conn, id, &who, reads_owner_kind, now)
    })
    .await?;
    forget(&state, removed).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(upload_incident_attachments)
        .service(upload_ticket_attachments)
        .service(upload_knowledge_attachments)
        .service(list_incident_attachments)
        .service(list_ticket_attachments)
        .service(list_knowledge_attachments)
        .service(get_attachment)
        .service(download_attachment)
        .service(delete_attachment);
}
