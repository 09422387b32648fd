//! Attachments (SPEC §13): uploads to incidents, coordination tickets and knowledge entries,
//! their lists and records, the download (with `Range`), and removal.
//!
//! An upload is read part by part and stored chunk by chunk as it arrives (`store::attachments`),
//! so memory stays flat whatever the file size and a file over `MAX_ATTACHMENT_SIZE` is refused
//! as soon as its bytes pass the limit.

use std::ops::RangeInclusive;
use std::time::Duration;

use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::body::SizedStream;
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::web::{Bytes, BytesMut, Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse, delete, get, post};
use futures_util::StreamExt;
use http_range_header::RangeUnsatisfiableError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::AuthUser;
use super::pagination::Page;
use crate::api::problems;
use crate::domain::attachment::{self, Attachment, Owner, OwnerKind};
use crate::domain::incident::NoteVisibility;
use crate::domain::knowledge;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;
use crate::store;
use crate::store::attachments::Staged;
use crate::store::chunks::CHUNK_BYTES;

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

/// A file's bytes.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// The attachments an upload stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    /// One per `file` part, in the order sent.
    pub items: Vec<Attachment>,
}

/// Uploads longer than this between two parts of the body are cut off (as any body is).
fn stall(state: &AppState) -> Duration {
    state.settings.body_timeout
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
    let stall = stall(state);
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

/// An attachment's bytes
///
/// Always a download (`Content-Disposition: attachment`, with `filename*` for names beyond
/// ASCII), never shown in the desk's origin (`Content-Security-Policy: sandbox`,
/// `X-Content-Type-Options: nosniff`). `Content-Type` is the sniffed type; programs and
/// scripts come as `application/octet-stream`. `ETag` is the SHA-256 (`If-None-Match` answers
/// 304). `Range: bytes=a-b` (one range) answers 206 with that part, so an interrupted download
/// resumes; several ranges answer the whole file.
///
/// Roles: as for the record.
///
/// Errors: 404 for no such file or one the caller may not see; 416 for a range beyond the end.
#[utoipa::path(
    tag = "attachments",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Attachment id"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023` or `bytes=-500`"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a copy the client holds"),
        ("If-Range" = Option<String>, Header, description = "Apply `Range` only while the file is this `ETag`")
    ),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = FileBytes,
            headers(("ETag" = String, description = "SHA-256 of the bytes, quoted"),
                    ("Content-Disposition" = String, description = "attachment; filename=…; filename*=UTF-8''…"))),
        (status = 206, description = "The requested part", content_type = "application/octet-stream", body = FileBytes,
            headers(("Content-Range" = String, description = "bytes a-b/size"))),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 416, description = "The range lies beyond the end (`range_not_satisfiable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        problems::ReadErrors
    )
)]
#[get("/attachments/{id}/content")]
pub async fn download_attachment(
    http: HttpRequest,
    state: Data<AppState>,
    caller: AuthUser,
    id: Path<i64>,
) -> Result<HttpResponse, AppError> {
    let found = readable(&state, &caller, id.into_inner()).await?;
    let file = found.attachment;
    let etag = format!("\"{}\"", file.sha256);
    let size = file.size as u64;
    let headers = http.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::IF_NONE_MATCH).is_some_and(|tags| {
        tags.split(',')
            .any(|tag| tag.trim() == etag || tag.trim() == "*")
    }) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish());
    }
    let range_applies = text(header::IF_RANGE).is_none_or(|tag| tag.trim() == etag);
    let range = match text(header::RANGE).filter(|_| range_applies && size > 0) {
        None => None,
        Some(raw) => match http_range_header::parse_range_header(raw) {
            // A Range header that cannot be read is ignored (RFC 9110 §14.2).
            Err(_) => None,
            Ok(parsed) => match parsed.validate(size) {
                Ok(ranges) if ranges.len() == 1 => ranges.into_iter().next(),
                // Several ranges: the whole file, which a server may always send instead.
                Ok(_) => None,
                // A suffix longer than the file is the whole file (RFC 9110 §14.1.3).
                Err(RangeUnsatisfiableError::FileSuffixOutOfBounds) => Some(0..=size - 1),
                Err(_) => return Err(AppError::RangeNotSatisfiable { size }),
            },
        },
    };
    let part: RangeInclusive<u64> = range.clone().unwrap_or(0..=size.saturating_sub(1));
    let length = if size == 0 {
        0
    } else {
        part.end() - part.start() + 1
    };
    let mut response = match range {
        Some(_) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", part.start(), part.end()),
            ));
            partial
        }
        None => HttpResponse::Ok(),
    };
    response
        .insert_header((
            header::CONTENT_TYPE,
            attachment::served_type(&file.content_type),
        ))
        .insert_header(disposition(&file.filename))
        .insert_header((header::ETAG, etag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'; frame-ancestors 'none'",
        ));
    let body = bytes_of(state.into_inner(), found.content_id, *part.start(), length);
    Ok(response.body(SizedStream::new(length, body)))
}

/// `Content-Disposition: attachment` naming `filename`: `filename` in ASCII for old clients and
/// `filename*` (RFC 6266 / 8187) with the name as given.
fn disposition(filename: &str) -> ContentDisposition {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut parameters = vec![DispositionParam::Filename(ascii)];
    if !filename.is_ascii() {
        parameters.push(DispositionParam::FilenameExt(ExtendedValue {
            charset: Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: filename.as_bytes().to_vec(),
        }));
    }
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters,
    }
}

/// The bytes `start .. start + length` of content `content_id`, read a chunk at a time as the
/// client takes them.
fn bytes_of(
    state: std::sync::Arc<AppState>,
    content_id: i64,
    start: u64,
    length: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, AppError>> + 'static {
    let end = start + length;
    futures_util::stream::unfold(start, move |offset| {
        let state = state.clone();
        async move {
            if offset >= end {
                return None;
            }
            let chunk_end = (offset / CHUNK_BYTES as u64 + 1) * CHUNK_BYTES as u64;
            let take = (chunk_end.min(end) - offset) as usize;
            let read = state
                .chunks
                .read(content_id, offset, take)
                .await
                .map_err(AppError::from);
            match read {
                Ok(bytes) if bytes.len() == take => {
                    Some((Ok(Bytes::from(bytes)), offset + take as u64))
                }
                Ok(_) => Some((
                    Err(AppError::internal("stored bytes shorter than the record")),
                    end,
                )),
                Err(error) => Some((Err(error), end)),
            }
        }
    })
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
    // Roles that read no owner's files learn nothing about this one.
    readable(&state, &caller, id).await?;
    let who = caller.caller();
    let now = state.clock.now();
    let (_, removed) = store::run(&state.pool, move |conn| {
        store::attachments::delete(conn, id, &who, now)
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
