//! Attachments (SPEC §13): records in `attachments`, bytes in `attachment_contents` and
//! `attachment_chunks`, stored once per distinct SHA-256.
//!
//! An upload first streams its bytes into a staged content row (`sha256` NULL), chunk by chunk,
//! each chunk its own short statement, so no connection is held while a client is slow and no
//! file is held whole. [`attach`] then, in one transaction, checks the owner again under its row
//! lock, settles each staged content (or drops it for an identical stored one), inserts the
//! records, the history entry and the events. A crash before that commit leaves only a staged
//! row, which [`collect_garbage`] removes; a record never exists without its bytes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::StoreError;
use super::chunks::CHUNK_BYTES;
use super::incidents::IncidentRow;
use super::outbox;
use super::schema::{
    attachment_contents, attachments, coordination_tickets, incidents, knowledge_entries,
};
use crate::domain::attachment::{self, Attachment, Owner, OwnerKind};
use crate::domain::coordination::CoordinationError;
use crate::domain::incident::{Incident, NoteVisibility, Status};
use crate::domain::knowledge;
use crate::domain::state_machine::Command;
use crate::domain::workflow::{self, Caller};

/// A stored attachment record.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = attachments, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct AttachmentRow {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub ticket_id: Option<i64>,
    pub entry_id: Option<i64>,
    pub content_id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: Vec<u8>,
    pub visibility: String,
    pub uploaded_by: i64,
    pub uploaded_at: DateTime<Utc>,
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = StoreError;

    fn try_from(row: AttachmentRow) -> Result<Self, StoreError> {
        let owner = match (row.incident_id, row.ticket_id, row.entry_id) {
            (Some(id), _, _) => Owner {
                kind: OwnerKind::Incident,
                id,
            },
            (_, Some(id), _) => Owner {
                kind: OwnerKind::CoordinationTicket,
                id,
            },
            (_, _, Some(id)) => Owner {
                kind: OwnerKind::KnowledgeEntry,
                id,
            },
            _ => return Err(StoreError::internal("an attachment without owner")),
        };
        Ok(Attachment {
            id: row.id,
            owner,
            filename: row.filename,
            content_type: row.content_type,
            size: row.size,
            sha256: hex::encode(&row.sha256),
            visibility: super::parse_stored(&row.visibility)?,
            uploaded_by: row.uploaded_by,
            uploaded_at: row.uploaded_at,
        })
    }
}

/// A file whose bytes are stored but not yet attached.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The staged content row.
    pub content_id: i64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// Bytes.
    pub size: i64,
    /// Cleaned filename.
    pub filename: String,
    /// Sniffed type.
    pub content_type: String,
}

/// Starts storing a file: a content row that no attachment names yet.
pub fn stage(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(attachment_contents::table)
        .values(attachment_contents::chunk_size.eq(CHUNK_BYTES as i32))
        .returning(attachment_contents::id)
        .get_result(conn)?)
}

/// Drops staged contents of an upload that failed (their chunks go with them).
pub fn discard(conn: &mut PgConnection, staged: &[i64]) -> Result<(), StoreError> {
    diesel::delete(
        attachment_contents::table
            .filter(attachment_contents::id.eq_any(staged))
            .filter(attachment_contents::sha256.is_null()),
    )
    .execute(conn)?;
    Ok(())
}

/// What a change to an owner's files needs to know of it.
struct OwnerFacts {
    /// The customer the owner's events concern.
    customer_id: Option<i64>,
    /// Files the owner holds.
    held: i64,
}

/// Checks that `caller` may change `owner`'s files (`command`: attach or detach), and returns
/// what the change needs; `lock` takes the owner's row lock, so concurrent uploads to one
/// owner count each other's files.
fn owner_facts(
    conn: &mut PgConnection,
    owner: Owner,
    caller: &Caller,
    command: Command,
    lock: bool,
) -> Result<OwnerFacts, StoreError> {
    let customer_id = match owner.kind {
        OwnerKind::Incident => {
            let query = incidents::table
                .find(owner.id)
                .select(IncidentRow::as_select());
            let row = if lock {
                query.for_no_key_update().first(conn).optional()?
            } else {
                query.first(conn).optional()?
            };
            let incident: Incident = row
                .ok_or_else(|| StoreError::not_found("incident", owner.id))?
                .try_into()?;
            workflow::decide_files(&incident, caller, command)?;
            incident.customer_id
        }
        OwnerKind::CoordinationTicket => {
            if !caller.roles.is_staff() {
                return Err(StoreError::not_found("coordination ticket", owner.id));
            }
            let query = coordination_tickets::table
                .find(owner.id)
                .select(coordination_tickets::incident_id);
            let incident_id: i64 = if lock {
                query.for_no_key_update().first(conn).optional()?
            } else {
                query.first(conn).optional()?
            }
            .ok_or_else(|| StoreError::not_found("coordination ticket", owner.id))?;
            let (status, customer_id): (String, Option<i64>) = incidents::table
                .find(incident_id)
                .select((incidents::status, incidents::customer_id))
                .first(conn)?;
            if status == Status::Closed.as_str() {
                return Err(CoordinationError::IncidentClosed(incident_id).into());
            }
            customer_id
        }
        OwnerKind::KnowledgeEntry => {
            // Customers know published entries only: a draft is "not found" to them.
            let customer = caller.confined_to_customer().is_some();
            let entry = if lock {
                knowledge_entries::table
                    .find(owner.id)
                    .for_no_key_update()
                    .select(knowledge_entries::id)
                    .first::<i64>(conn)
                    .optional()?
                    .ok_or_else(|| StoreError::not_found("knowledge entry", owner.id))?;
                super::knowledge::find(conn, owner.id, customer)?
            } else {
                super::knowledge::find(conn, owner.id, customer)?
            };
            let caller_id = caller
                .id
                .ok_or_else(|| StoreError::forbidden("files are added by a person"))?;
            knowledge::may_change_files(&entry, caller_id)?;
            None
        }
    };
    let held = count(conn, owner)?;
    Ok(OwnerFacts { customer_id, held })
}

fn count(conn: &mut PgConnection, owner: Owner) -> Result<i64, StoreError> {
    let query = attachments::table.count().into_boxed();
    let query = match owner.kind {
        OwnerKind::Incident => query.filter(attachments::incident_id.eq(owner.id)),
        OwnerKind::CoordinationTicket => query.filter(attachments::ticket_id.eq(owner.id)),
        OwnerKind::KnowledgeEntry => query.filter(attachments::entry_id.eq(owner.id)),
    };
    Ok(query.get_result(conn)?)
}

/// Checks, before any byte is read, that `caller` may add files of `visibility` to `owner` and
/// that one more fits (409 `attachment_limit`); returns how many the owner holds. [`attach`]
/// checks again under the lock.
pub fn check_upload(
    conn: &mut PgConnection,
    owner: Owner,
    caller: &Caller,
    visibility: NoteVisibility,
) -> Result<i64, StoreError> {
    let facts = owner_facts(conn, owner, caller, Command::Attach(visibility), false)?;
    attachment::check_room(owner.kind, facts.held, 1).map_err(limit_error)?;
    Ok(facts.held)
}

fn limit_error(error: attachment::LimitError) -> StoreError {
    StoreError::Conflict {
        code: "attachment_limit",
        detail: format!("{error}."),
    }
}

/// What an upload stored: the records, and the staged contents dropped for identical stored
/// ones (whose chunks the chunk store is to forget).
#[derive(Debug)]
pub struct Attached {
    /// The records, in the order of the files.
    pub attachments: Vec<Attachment>,
    /// Staged contents deleted because the same bytes were stored already.
    pub dropped: Vec<i64>,
}

/// Attaches the staged files to `owner` by `caller`, all or none, with the history entry and
/// one `attachment.created` event per file.
pub fn attach(
    conn: &mut PgConnection,
    owner: Owner,
    caller: &Caller,
    visibility: NoteVisibility,
    files: Vec<Staged>,
    now: DateTime<Utc>,
) -> Result<Attached, StoreError> {
    let uploader = caller
        .id
        .ok_or_else(|| StoreError::forbidden("files are added by a person"))?;
    conn.transaction(|conn| {
        let facts = owner_facts(conn, owner, caller, Command::Attach(visibility), true)?;
        attachment::check_room(owner.kind, facts.held, files.len() as i64).map_err(limit_error)?;
        let mut stored = Vec::with_capacity(files.len());
        let mut dropped = Vec::new();
        for file in &files {
            let content_id = settle(conn, file)?;
            if content_id != file.content_id {
                dropped.push(file.content_id);
            }
            let row: AttachmentRow = diesel::insert_into(attachments::table)
                .values((
                    attachments::incident_id
                        .eq((owner.kind == OwnerKind::Incident).then_some(owner.id)),
                    attachments::ticket_id
                        .eq((owner.kind == OwnerKind::CoordinationTicket).then_some(owner.id)),
                    attachments::entry_id
                        .eq((owner.kind == OwnerKind::KnowledgeEntry).then_some(owner.id)),
                    attachments::content_id.eq(content_id),
                    attachments::filename.eq(&file.filename),
                    attachments::content_type.eq(&file.content_type),
                    attachments::size.eq(file.size),
                    attachments::sha256.eq(file.sha256.as_slice()),
                    attachments::visibility.eq(visibility.as_str()),
                    attachments::uploaded_by.eq(uploader),
                    attachments::uploaded_at.eq(now),
                ))
                .returning(AttachmentRow::as_returning())
                .get_result(conn)?;
            stored.push(Attachment::try_from(row)?);
        }
        let names: Vec<&str> = stored.iter().map(|a| a.filename.as_str()).collect();
        journal(conn, owner, uploader, false, visibility, &names, now)?;
        for file in &stored {
            emit(
                conn,
                "attachment.created",
                file,
                facts.customer_id,
                uploader,
                now,
            )?;
        }
        Ok(Attached {
            attachments: stored,
            dropped,
        })
    })
}

/// The content row that holds `file`'s bytes: an identical stored one (and the staged copy
/// dropped), else the staged one, now named by its SHA-256.
fn settle(conn: &mut PgConnection, file: &Staged) -> Result<i64, StoreError> {
    // Identical files finishing at once take turns, so the second finds the first.
    let key = i64::from_be_bytes(file.sha256[..8].try_into().expect("eight bytes"));
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(key)
        .execute(conn)?;
    // The share lock keeps the garbage collector off the row until this transaction ends.
    let existing: Option<i64> = attachment_contents::table
        .filter(attachment_contents::sha256.eq(file.sha256.as_slice()))
        .select(attachment_contents::id)
        .for_key_share()
        .first(conn)
        .optional()?;
    if let Some(existing) = existing {
        discard(conn, &[file.content_id])?;
        return Ok(existing);
    }
    let settled = diesel::update(
        attachment_contents::table
            .find(file.content_id)
            .filter(attachment_contents::sha256.is_null()),
    )
    .set((
        attachment_contents::sha256.eq(file.sha256.as_slice()),
        attachment_contents::size.eq(file.size),
    ))
    .execute(conn)?;
    if settled == 0 {
        return Err(StoreError::internal(
            "a staged upload was removed before it was attached (it took longer than ATTACHMENT_UPLOAD_TIMEOUT)",
        ));
    }
    Ok(file.content_id)
}

/// Writes the owner's journal entry of files added or removed: the incident's history, or the
/// coordination ticket's (knowledge entries keep no journal of drafts).
fn journal(
    conn: &mut PgConnection,
    owner: Owner,
    actor: i64,
    removed: bool,
    visibility: NoteVisibility,
    filenames: &[&str],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let entry = attachment::history_entry(removed, visibility, filenames);
    match owner.kind {
        OwnerKind::Incident => {
            super::incident_writes::record_history(conn, owner.id, Some(actor), now, entry)
        }
        OwnerKind::CoordinationTicket => super::coordination::record(
            conn,
            owner.id,
            actor,
            entry.action,
            vec![],
            entry.comment,
            now,
        ),
        OwnerKind::KnowledgeEntry => Ok(()),
    }
}

fn emit(
    conn: &mut PgConnection,
    event_type: &'static str,
    file: &Attachment,
    customer_id: Option<i64>,
    actor: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let data = serde_json::json!({ "attachment": file });
    let event = outbox::Event {
        event_type,
        customer_id,
        actor_id: Some(actor),
    };
    outbox::emit(conn, event, now, data).map(|_| ())
}

/// An attachment with what deciding who reads it needs.
#[derive(Debug, Clone)]
pub struct Found {
    /// The record.
    pub attachment: Attachment,
    /// Its bytes.
    pub content_id: i64,
    /// The organisation of the incident it belongs to (for an incident's file).
    pub owner_customer: Option<i64>,
    /// Its knowledge entry is published (for an entry's file).
    pub entry_published: bool,
}

/// Attachment `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> Result<Found, StoreError> {
    let row: AttachmentRow = attachments::table
        .find(id)
        .select(AttachmentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("attachment", id))?;
    let content_id = row.content_id;
    let attachment = Attachment::try_from(row)?;
    let (owner_customer, entry_published) = match attachment.owner.kind {
        OwnerKind::Incident => (
            incidents::table
                .find(attachment.owner.id)
                .select(incidents::customer_id)
                .first(conn)?,
            false,
        ),
        OwnerKind::CoordinationTicket => (None, false),
        OwnerKind::KnowledgeEntry => {
            let status: String = knowledge_entries::table
                .find(attachment.owner.id)
                .select(knowledge_entries::status)
                .first(conn)?;
            (
                None,
                status == knowledge::KnowledgeStatus::Published.as_str(),
            )
        }
    };
    Ok(Found {
        attachment,
        content_id,
        owner_customer,
        entry_published,
    })
}

/// `owner`'s attachments, oldest first; `public_only` for customers.
pub fn list(
    conn: &mut PgConnection,
    owner: Owner,
    public_only: bool,
) -> Result<Vec<Attachment>, StoreError> {
    let mut query = attachments::table
        .select(AttachmentRow::as_select())
        .order(attachments::id)
        .into_boxed();
    query = match owner.kind {
        OwnerKind::Incident => query.filter(attachments::incident_id.eq(owner.id)),
        OwnerKind::CoordinationTicket => query.filter(attachments::ticket_id.eq(owner.id)),
        OwnerKind::KnowledgeEntry => query.filter(attachments::entry_id.eq(owner.id)),
    };
    if public_only {
        query = query.filter(attachments::visibility.eq(NoteVisibility::Public.as_str()));
    }
    query
        .load::<AttachmentRow>(conn)?
        .into_iter()
        .map(Attachment::try_from)
        .collect()
}

/// `owner`'s attachments as `caller` may see them: 404 when the caller may not know the owner
/// (another organisation's incident, a draft entry for a customer); customers get the public
/// files only.
pub fn visible_list(
    conn: &mut PgConnection,
    owner: Owner,
    caller: &Caller,
) -> Result<Vec<Attachment>, StoreError> {
    let customer = caller.confined_to_customer();
    match owner.kind {
        OwnerKind::Incident => {
            let incident = super::incidents::find(conn, owner.id)?;
            if !caller.sees(&incident) {
                return Err(StoreError::not_found("incident", owner.id));
            }
        }
        OwnerKind::CoordinationTicket => {
            super::coordination::find(conn, owner.id)?;
        }
        OwnerKind::KnowledgeEntry => {
            super::knowledge::find(conn, owner.id, customer.is_some())?;
        }
    }
    list(conn, owner, customer.is_some())
}

/// Removes attachment `id` by `caller`: the record, the owner's journal entry and
/// `attachment.deleted`, in one transaction; the bytes too when no other record names them.
/// Returns the record and the contents removed with it.
pub fn delete(
    conn: &mut PgConnection,
    id: i64,
    caller: &Caller,
    reads_owner_kind: impl FnOnce(OwnerKind) -> bool,
    now: DateTime<Utc>,
) -> Result<(Attachment, Vec<i64>), StoreError> {
    let actor = caller
        .id
        .ok_or_else(|| StoreError::forbidden("files are removed by a person"))?;
    conn.transaction(|conn| {
        let found = find(conn, id)?;
        // A caller who may not read the file (by role, or a customer by organisation and
        // visibility) learns nothing of it.
        if !reads_owner_kind(found.attachment.owner.kind) || !readable_by(caller, &found) {
            return Err(StoreError::not_found("attachment", id));
        }
        let (file, content_id) = (found.attachment, found.content_id);
        // The owner's rules decide: the state machine for an incident's files (the uploader
        // or staff, never once closed), staff for a ticket's, the author of a draft for an
        // entry's.
        let own = file.uploaded_by == actor;
        let facts = owner_facts(conn, file.owner, caller, Command::Detach { own }, true)?;
        // Another removal may have taken it while this one waited for the owner's lock.
        if diesel::delete(attachments::table.find(id)).execute(conn)? == 0 {
            return Err(StoreError::not_found("attachment", id));
        }
        journal(
            conn,
            file.owner,
            actor,
            true,
            file.visibility,
            &[&file.filename],
            now,
        )?;
        emit(
            conn,
            "attachment.deleted",
            &file,
            facts.customer_id,
            actor,
            now,
        )?;
        let removed = remove_unreferenced(conn, Some(content_id), None, 1)?;
        Ok((file, removed))
    })
}

/// Whether `caller` may know of `found` (SPEC §13: like notes).
pub fn readable_by(caller: &Caller, found: &Found) -> bool {
    let customer = caller.confined_to_customer();
    let published_or_desk = found.attachment.owner.kind != OwnerKind::KnowledgeEntry
        || customer.is_none()
        || found.entry_published;
    published_or_desk
        && attachment::readable(
            customer,
            found.attachment.owner.kind,
            found.owner_customer,
            found.attachment.visibility,
        )
}

/// Deletes up to `limit` contents no record names: `only` one, or those settled, and those
/// staged longer than `abandoned_after` ago by the database's clock (uploads that never
/// finished). Rows an upload holds (it is attaching to them) are skipped, so a file being
/// attached never loses its bytes.
fn remove_unreferenced(
    conn: &mut PgConnection,
    only: Option<i64>,
    abandoned_after: Option<Duration>,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    #[derive(QueryableByName)]
    struct Removed {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let removed: Vec<Removed> = diesel::sql_query(
        "DELETE FROM attachment_contents WHERE id IN (\
           SELECT c.id FROM attachment_contents c \
           WHERE ($1::bigint IS NULL OR c.id = $1) \
             AND (c.sha256 IS NOT NULL \
                  OR c.created_at < now() - make_interval(secs => $2::float8)) \
             AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.content_id = c.id) \
           ORDER BY c.id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id",
    )
    .bind::<diesel::sql_types::Nullable<BigInt>, _>(only)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Double>, _>(
        abandoned_after.map(|d| d.as_secs_f64()),
    )
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    Ok(removed.into_iter().map(|r| r.id).collect())
}

/// Those of `contents` that have no row (any more).
pub fn without_rows(conn: &mut PgConnection, contents: &[i64]) -> Result<Vec<i64>, StoreError> {
    let known: std::collections::HashSet<i64> = attachment_contents::table
        .filter(attachment_contents::id.eq_any(contents))
        .select(attachment_contents::id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    Ok(contents
        .iter()
        .copied()
        .filter(|id| !known.contains(id))
        .collect())
}

/// Contents removed per statement by [`collect_garbage`].
const GARBAGE_BATCH: i64 = 100;

/// Removes bytes no record names: files whose last record was deleted, and uploads that never
/// finished (staged longer than `abandoned_after` ago, e.g. by a server that crashed). Returns
/// the contents removed.
pub fn collect_garbage(
    conn: &mut PgConnection,
    abandoned_after: Duration,
) -> Result<Vec<i64>, StoreError> {
    let mut removed = Vec::new();
    loop {
        let batch = remove_unreferenced(conn, None, Some(abandoned_after), GARBAGE_BATCH)?;
        let done = batch.len() < GARBAGE_BATCH as usize;
        removed.extend(batch);
        if done {
            return Ok(removed);
        }
    }
}

/// The public attachments of incident `id`, for its record form.
pub fn public_of_incident(conn: &mut PgConnection, id: i64) -> Result<Vec<Attachment>, StoreError> {
    list(
        conn,
        Owner {
            kind: OwnerKind::Incident,
            id,
        },
        true,
    )
}
