//! Uploads: a `multipart/form-data` body read part by part, each file hashed, sniffed and
//! stored chunk by chunk as it arrives, then attached in one transaction.

use std::time::Duration;

use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse, post};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::api::extract::AuthUser;
use crate::api::problems;
use crate::domain::attachment::{self, Attachment, Owner, OwnerKind};
use crate::domain::incident::NoteVisibility;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::attachments::Staged;
use crate::store::chunks::CHUNK_BYTES;

use super::{entry, forget, incident, ticket};

/// The form of an upload: an optional `visibility`, and one or more `file` parts.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// `public` (staff and the incident's organisation) or `internal` (staff only), for every
    /// file of the upload. Default: `public` for customer users, `internal` for staff.
    #[schema(required = false)]
    visibility: NoteVisibility,
    /// A file; repeat the part to send several at once (at most 50 per owner in all).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The attachments an upload stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    /// One per `file` part, in the order sent.
    pub items: Vec<Attachment>,
}

/// Room for the multipart framing around the files of one request.
const FRAMING_BYTES: u64 = 1024 * 1024;

/// The caller's default visibility for files (SPEC §13).
fn default_visibility(caller: &AuthUser) -> NoteVisibility {
    if caller.roles.is_staff() {
        NoteVisibility::Internal
    } else {
        NoteVisibility::Public
    }
}

/// Stores the files of a `multipart/form-data` upload and attaches them to `owner`.
async fn upload(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    owner: Owner,
    payload: Payload,
) -> Result<HttpResponse, AppError> {
    let limit = state.settings.max_attachment_size;
    // Refused before a byte is read when the client announces more than fifty files could take.
    let announced = http
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| {
        length > limit.saturating_mul(attachment::MAX_PER_OWNER as u64) + FRAMING_BYTES
    }) {
        return Err(AppError::FileTooLarge { limit });
    }
    let who = caller.caller();
    let mut visibility = default_visibility(&caller);
    let held = {
        let who = who.clone();
        store::run(&state.pool, move |conn| {
            store::attachments::check_upload(conn, owner, &who, visibility)
        })
        .await?
    };
    let mut form = Multipart::new(http.headers(), payload);
    let mut staged: Vec<Staged> = Vec::new();
    let limits = Limits {
        size: limit,
        held,
        kind: owner.kind,
    };
    let received = receive(&state, &mut form, &mut visibility, &mut staged, limits).await;
    let outcome = match received {
        Ok(()) if staged.is_empty() => Err(AppError::invalid_field(
            "file",
            "required",
            "send at least one `file` part",
        )),
        Ok(()) => {
            let files = staged.clone();
            let now = state.clock.now();
            let attached = store::run(&state.pool, move |conn| {
                store::attachments::attach(conn, owner, &who, visibility, files, now)
            })
            .await;
            match attached {
                Ok(attached) => {
                    forget(&state, attached.dropped).await;
                    Ok(attached.attachments)
                }
                Err(error) => Err(AppError::from(error)),
            }
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(items) => Ok(HttpResponse::Created().json(Uploaded { items })),
        Err(error) => {
            discard(&state, &staged).await;
            Err(error)
        }
    }
}

/// Reads every part of `form`: `visibility` into `visibility`, each `file` into a staged
/// content pushed onto `staged` (so the caller can drop what was stored if anything fails).
/// What one upload may bring: files of at most `size` bytes, and as many as fit beside the
/// `held` files of an owner of `kind`.
#[derive(Debug, Clone, Copy)]
struct Limits {
    size: u64,
    held: i64,
    kind: OwnerKind,
}

async fn receive(
    state: &AppState,
    form: &mut Multipart,
    visibility: &mut NoteVisibility,
    staged: &mut Vec<Staged>,
    limits: Limits,
) -> Result<(), AppError> {
    // A body that stalls between parts is cut off like any other (`BODY_TIMEOUT_SECS`).
    let stall = state.settings.body_timeout;
    while let Some(field) = next_within(stall, form.next()).await? {
        let mut field = field.map_err(multipart_error)?;
        match field.name().unwrap_or_default() {
            // Applies to every file of the upload, wherever it comes: the records are written
            // at the end, after the state machine has judged this visibility again.
            "visibility" => {
                let raw = read_small(&mut field, stall).await?;
                *visibility = raw.trim().parse().map_err(|_| {
                    AppError::invalid_field("visibility", "invalid", "`public` or `internal`")
                })?;
            }
            "file" => {
                // Refused before the file's bytes are read when it would not fit.
                let adding = staged.len() as i64 + 1;
                attachment::check_room(limits.kind, limits.held, adding).map_err(|error| {
                    AppError::Conflict {
                        code: "attachment_limit",
                        detail: format!("{error}."),
                    }
                })?;
                store_file(state, &mut field, limits.size, stall, staged).await?;
            }
            other => {
                let name: String = other.chars().take(60).collect();
                return Err(AppError::invalid_field(
                    if name.is_empty() { "part" } else { &name },
                    "unknown",
                    "an upload has `visibility` and `file` parts only",
                ));
            }
        }
    }
    Ok(())
}

/// The next item of `stream`, or 408 when the client sends nothing for `stall`.
async fn next_within<T>(
    stall: Duration,
    next: impl std::future::Future<Output = Option<T>>,
) -> Result<Option<T>, AppError> {
    tokio::time::timeout(stall, next)
        .await
        .map_err(|_| AppError::RequestTimeout)
}

/// A short text part.
async fn read_small(field: &mut Field, stall: Duration) -> Result<String, AppError> {
    let mut text = BytesMut::new();
    while let Some(chunk) = next_within(stall, field.next()).await? {
        text.extend_from_slice(&chunk.map_err(multipart_error)?);
        if text.len() > 64 {
            return Err(AppError::invalid_field(
                "visibility",
                "invalid",
                "`public` or `internal`",
            ));
        }
    }
    String::from_utf8(text.to_vec())
        .map_err(|_| AppError::invalid_field("visibility", "invalid", "`public` or `internal`"))
}

/// Streams one `file` part into a staged content, chunk by chunk, hashing and sniffing it on
/// the way, and pushes it onto `staged`. It is pushed before its first byte, so a failure
/// part-way leaves it there for the caller to drop.
async fn store_file(
    state: &AppState,
    field: &mut Field,
    limit: u64,
    stall: Duration,
    staged: &mut Vec<Staged>,
) -> Result<(), AppError> {
    let filename = attachment::clean_filename(
        field
            .content_disposition()
            .and_then(|cd| {
                cd.get_filename_ext()
                    .and_then(|ext| String::from_utf8(ext.value.clone()).ok())
                    .or_else(|| cd.get_filename().map(str::to_owned))
            })
            .as_deref()
            .unwrap_or_default(),
    );
    let content_id = store::run(&state.pool, store::attachments::stage).await?;
    // Recorded at once, so that the bytes are dropped if this part fails.
    let mut file = Staged {
        content_id,
        sha256: [0; 32],
        size: 0,
        filename,
        content_type: String::new(),
    };
    staged.push(file.clone());
    stream_into(state, field, &mut file, limit, stall).await?;
    if let Some(last) = staged.last_mut() {
        *last = file;
    }
    Ok(())
}

async fn stream_into(
    state: &AppState,
    field: &mut Field,
    file: &mut Staged,
    limit: u64,
    stall: Duration,
) -> Result<(), AppError> {
    let mut hasher = Sha256::new();
    let mut buffer = BytesMut::with_capacity(CHUNK_BYTES);
    let mut seq = 0i32;
    let mut size: u64 = 0;
    let mut head: Option<String> = None;
    loop {
        let chunk = next_within(stall, field.next()).await?;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk = chunk.map_err(multipart_error)?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(AppError::FileTooLarge { limit });
            }
            hasher.update(&chunk);
            buffer.extend_from_slice(&chunk);
        }
        while buffer.len() >= CHUNK_BYTES || (done && !buffer.is_empty()) {
            let take = buffer.len().min(CHUNK_BYTES);
            let piece: Bytes = buffer.split_to(take).freeze();
            if head.is_none() {
                head = Some(attachment::sniff(&piece));
            }
            state.chunks.write(file.content_id, seq, piece).await?;
            seq += 1;
        }
        if done {
            break;
        }
    }
    file.sha256 = hasher.finalize().into();
    file.size = size as i64;
    file.content_type = head.unwrap_or_else(|| attachment::sniff(b""));
    Ok(())
}

/// Drops the staged contents of a failed upload; what this misses, the sweep removes later.
async fn discard(state: &AppState, staged: &[Staged]) {
    if staged.is_empty() {
        return;
    }
    let ids: Vec<i64> = staged.iter().map(|file| file.content_id).collect();
    let dropped = ids.clone();
    match store::run(&state.pool, move |conn| {
        store::attachments::discard(conn, &ids)
    })
    .await
    {
        Ok(()) => forget(state, dropped).await,
        Err(error) => log::warn!("dropping the bytes of a failed upload failed: {error}"),
    }
}

fn multipart_error(error: MultipartError) -> AppError {
    match error {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible
        | MultipartError::BoundaryMissing => AppError::UnsupportedUpload,
        MultipartError::Payload(actix_web::error::PayloadError::Overflow) => {
            AppError::PayloadTooLarge
        }
        other => AppError::BadRequest(format!("The multipart body cannot be read: {other}.")),
    }
}

/// Attach files to an incident
///
/// `multipart/form-data`: an optional `visibility` part (`public` | `internal`; default `public`
/// for customer users, `internal` for staff) and one or more `file` parts. Each file is
/// stored as its bytes are, checked for type by its content (not by its name or the declared
/// type), and kept once however often it is uploaded. All files appear, or none. Emits
/// `attachment.created` per file and writes a history entry (public for public files).
///
/// Roles: staff; `customer` (public files, its own organisation's incidents).
///
/// Errors: 404 for an incident the caller may not see; 409 `incident_closed` (a closed
/// incident's files never change) or `attachment_limit` (more than 50 per incident); 413
/// `payload_too_large` beyond `MAX_ATTACHMENT_SIZE` (default 25 MB), refused as soon as the file
/// passes it; 415 for a body that is not `multipart/form-data`; 422 without a `file` part.
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The files, as stored", body = Uploaded),
        problems::UploadErrors
    )
)]
#[post("/incidents/{id}/attachments")]
pub async fn upload_incident_attachments(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    payload: Payload,
) -> Result<HttpResponse, AppError> {
    upload(http, state, caller, incident(id.into_inner()), payload).await
}

/// Attach files to a coordination ticket
///
/// As for incidents: `multipart/form-data` with `file` parts (and `visibility`, default
/// `internal`). Emits `attachment.created`; the ticket's history records it.
///
/// Roles: staff.
///
/// Errors: 404 for no such ticket (or a customer asking); 409 `incident_closed` once its
/// incident is closed, or `attachment_limit`; 413 `payload_too_large`; 415; 422.
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Coordination ticket id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The files, as stored", body = Uploaded),
        problems::UploadErrors
    )
)]
#[post("/coordination-tickets/{id}/attachments")]
pub async fn upload_ticket_attachments(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    payload: Payload,
) -> Result<HttpResponse, AppError> {
    upload(http, state, caller, ticket(id.into_inner()), payload).await
}

/// Attach files to a knowledge entry
///
/// As for incidents: `multipart/form-data` with `file` parts (and `visibility`; public files of a
/// published entry are shown to customer users). Emits `attachment.created`.
///
/// Roles: the entry's author, while it is a `draft`.
///
/// Errors: 403 for anyone but the author; 404; 409 `illegal_transition` once submitted, or
/// `attachment_limit`; 413 `payload_too_large`; 415; 422.
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Knowledge entry id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The files, as stored", body = Uploaded),
        problems::UploadErrors
    )
)]
#[post("/knowledge/{id}/attachments")]
pub async fn upload_knowledge_attachments(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
    payload: Payload,
) -> Result<HttpResponse, AppError> {
    upload(http, state, caller, entry(id.into_inner()), payload).await
}
