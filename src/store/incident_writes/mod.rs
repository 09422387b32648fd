//! Every write to an incident: load the facts the command needs, lock the row, ask the domain
//! for one decision, check the client's version, and write the outcome (the row, its history
//! entry, the note, the escalation and the webhook events) in one transaction.
//!
//! `create.rs` stores new incidents, `journal.rs` writes history entries and webhook events
//! (and batches of monitoring decisions on one incident); this module runs a command on an
//! existing incident and looks up the facts decisions need.

mod create;
mod journal;

pub use create::create;
pub(super) use create::insert;
pub(super) use journal::{Decided, PendingHistory, write_history};
use journal::{emit, event_data, record};

/// Writes one history entry of incident `incident_id` (in the caller's transaction).
pub(in crate::store) use journal::record as record_history;

use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;

use crate::domain::escalation::Escalation;
use crate::domain::incident::{Incident, Note, NoteVisibility, Status};
use crate::domain::notification::{self, NotificationKind};
use crate::domain::role::{Role, Roles};
use crate::domain::search::IncidentText;
use crate::domain::sla::UploadCutoff;
use crate::domain::taxonomy::Taxonomy;
use crate::domain::workflow::{
    self, Caller, CiRef, CustomerFacts, IncidentCommand, IncidentEvent, Lookups, UserFacts,
};
use crate::store::StoreError;
use crate::store::escalations;
use crate::store::incidents::{IncidentRow, NoteRow};
use crate::store::schema::{attachments, customers, incident_notes, incidents};
use crate::store::{calendar, check_version, notifications, report_summaries};

/// What every incident write needs besides the database: the taxonomy and the deadline
/// settings.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    /// Classification and cause codes.
    pub taxonomy: Arc<Taxonomy>,
    /// Local time zone of deadlines and the upload cut-off.
    pub timezone: Tz,
    /// The daily upload cut-off (local time), when configured.
    pub upload_cutoff: Option<NaiveTime>,
    /// How long after closing a user-reported incident its follow-up is due.
    pub follow_up_window: chrono::Duration,
}

impl WriteSettings {
    /// The write settings of a server's configuration.
    pub fn new(settings: &crate::config::Settings, taxonomy: Arc<Taxonomy>) -> Self {
        WriteSettings {
            taxonomy,
            timezone: settings.timezone,
            upload_cutoff: settings.upload_cutoff,
            follow_up_window: chrono::Duration::from_std(settings.follow_up_window)
                .unwrap_or(chrono::Duration::MAX),
        }
    }

    pub(super) fn cutoff(&self) -> Option<UploadCutoff> {
        self.upload_cutoff.map(|time| UploadCutoff {
            time,
            timezone: self.timezone,
        })
    }
}

/// What a write stored.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The incident after the change.
    pub incident: Incident,
    /// The note written, if any.
    pub note: Option<Note>,
    /// The escalation recorded, if any.
    pub escalation: Option<Escalation>,
    /// An open `customer_issue` coordination ticket blocks resolving it (for `allowed_actions`).
    pub open_customer_issue: bool,
}

/// What a report did.
#[derive(Debug, Clone)]
pub enum Reported {
    /// A new incident.
    Created(Incident),
    /// Recorded on the unresolved incident it duplicates, as it is now.
    Appended {
        /// The incident.
        incident: Incident,
        /// An open `customer_issue` coordination ticket blocks resolving it.
        open_customer_issue: bool,
    },
}

/// Runs `command` by `caller` on incident `id`. Concurrent writes to one incident queue on the
/// row lock, so each decision sees the state the previous one left.
pub fn execute(
    conn: &mut PgConnection,
    id: i64,
    expected_version: Option<i32>,
    caller: &Caller,
    command: IncidentCommand,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    conn.transaction(|conn| {
        let current: Incident = incidents::table
            .find(id)
            .select(IncidentRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("incident", id))?
            .try_into()?;
        let needs = command.needs();
        let lookups = Lookups {
            now,
            taxonomy: &settings.taxonomy,
            user: needs
                .user
                .map(|id| user_facts(conn, id))
                .transpose()?
                .flatten(),
            incident: needs
                .incident
                .map(|id| super::incidents::find_ref(conn, id))
                .transpose()?
                .flatten(),
            ci: needs.ci.map(|id| ci_ref(conn, id)).transpose()?.flatten(),
            customer: needs
                .customer
                .map(|id| customer_facts(conn, id))
                .transpose()?
                .flatten(),
            // Only a resolve asks; the ticket's writer locks this incident row too, so the
            // answer holds until this transaction ends.
            open_customer_issue: matches!(command, IncidentCommand::Resolve(_))
                && super::coordination::blocks_resolving(conn, id)?,
            deadlines: needs
                .deadlines
                .then(|| calendar::deadlines(conn, settings.timezone))
                .transpose()?,
            upload_cutoff: settings.cutoff(),
            follow_up_window: settings.follow_up_window,
            knowledge_entry: needs
                .knowledge_entry
                .map(|id| super::knowledge::published(conn, id))
                .transpose()?
                .flatten(),
        };
        let outcome = workflow::decide(&current, caller, command, &lookups)?;
        // The decision may refuse for a reason the client must see first (not visible, closed,
        // illegal, forbidden, invalid); only then does a stale version matter.
        check_version(expected_version, current.version)?;
        let escalation = match &outcome.escalation {
            Some(record) => {
                match escalations::insert_once(conn, id, record)? {
                    Some(row) => Some(Escalation::try_from(row)?),
                    // The same SLA escalation exists already (another instance raised it).
                    None if !outcome.changes_fields() => {
                        return Ok(Applied {
                            open_customer_issue: lookups.open_customer_issue,
                            incident: current,
                            note: None,
                            escalation: None,
                        });
                    }
                    None => None,
                }
            }
            None => None,
        };
        if let (Some(reason), Some(actor)) = (&outcome.cancel_tickets, caller.id) {
            super::coordination::cancel_for_closure(conn, id, actor, &caller.roles, reason, now)?;
        }
        if let Some(entry) = outcome.knowledge_used {
            super::knowledge::count_use(conn, entry)?;
        }
        let note = match (&outcome.note, caller.id) {
            (Some(note), Some(author)) => {
                check_note_files(conn, id, note.visibility, &note.attachment_ids)?;
                let row: NoteRow = diesel::insert_into(incident_notes::table)
                    .values((
                        incident_notes::incident_id.eq(id),
                        incident_notes::author_id.eq(author),
                        incident_notes::visibility.eq(note.visibility.as_str()),
                        incident_notes::body.eq(&note.body),
                        incident_notes::created_at.eq(now),
                        incident_notes::attachment_ids.eq(&note.attachment_ids),
                    ))
                    .returning(NoteRow::as_returning())
                    .get_result(conn)?;
                Some(Note::try_from(row)?)
            }
            _ => None,
        };
        // The note first, so that the search document is written once, with it.
        let note_added = note.is_some();
        let stored: Incident = if outcome.changes_fields() {
            store_decided(
                conn,
                outcome.incident,
                &current,
                now,
                settings.timezone,
                note_added,
            )?
        } else {
            if note_added {
                super::incident_text::reindex(conn, id)?;
            }
            current
        };
        if let Some(entry) = outcome.history {
            record(conn, id, caller.id, now, entry)?;
        }
        for event in outcome.events {
            let mut data = match (&escalation, event.is_about_escalation()) {
                (Some(escalation), true) => event_data(&stored, Some(escalation), now)?,
                // An escalation that was not recorded (another instance had it) is not news.
                (None, true) => continue,
                (_, false) => event_data(&stored, None, now)?,
            };
            if let (IncidentEvent::NoteCreated, Some(note), Some(fields)) =
                (event, &note, data.as_object_mut())
            {
                let note = serde_json::to_value(note).map_err(StoreError::internal)?;
                fields.insert("note".to_owned(), note);
            }
            emit(conn, event, &stored, caller.id, now, data)?;
        }
        if let Some(note) = &note
            && notification::tells_note(note.visibility == NoteVisibility::Public, &caller.roles)
        {
            notifications::Queue::new(&stored, NotificationKind::Note, Some(note.id), now)
                .execute(conn)?;
        }
        let open_customer_issue = matches!(stored.status, Status::New | Status::InProgress)
            && super::coordination::blocks_resolving(conn, id)?;
        Ok(Applied {
            incident: stored,
            note,
            escalation,
            open_customer_issue,
        })
    })
}

/// Checks that the attachments a note names belong to `incident_id`, and for a public note that
/// they are public; `Invalid` on `attachment_ids` otherwise, as for ids that do not exist.
fn check_note_files(
    conn: &mut PgConnection,
    incident_id: i64,
    visibility: NoteVisibility,
    ids: &[i64],
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut query = attachments::table
        .filter(attachments::id.eq_any(ids))
        .filter(attachments::incident_id.eq(incident_id))
        .count()
        .into_boxed();
    if visibility == NoteVisibility::Public {
        query = query.filter(attachments::visibility.eq(NoteVisibility::Public.as_str()));
    }
    let found: i64 = query.get_result(conn)?;
    if found != ids.len() as i64 {
        return Err(StoreError::invalid_field(
            "attachment_ids",
            "unknown",
            "names attachments of this incident only (a public note: public ones only)",
        ));
    }
    Ok(())
}

/// Runs the reporter's answer `command` (a confirmation or a rejection, SPEC §12) to the
/// resolution of incident `id` at `resolution`, given through a confirmation link. `None` when
/// that resolution no longer awaits an answer: answered already, taken back, or the incident
/// gone on; the row stays locked from that check to the write.
pub fn answer_resolution(
    conn: &mut PgConnection,
    id: i64,
    resolution: DateTime<Utc>,
    command: IncidentCommand,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Option<Applied>, StoreError> {
    conn.transaction(|conn| {
        let current: Option<IncidentRow> = incidents::table
            .find(id)
            .select(IncidentRow::as_select())
            .for_update()
            .first(conn)
            .optional()?;
        let Some(current) = current.map(Incident::try_from).transpose()? else {
            return Ok(None);
        };
        if !notification::still_true(
            NotificationKind::Resolved,
            Some(resolution),
            current.status,
            current.resolved_at,
            current.user_confirmed_at.is_some(),
        ) {
            return Ok(None);
        }
        // The reporter answers as their organisation's user would; an incident of no known
        // organisation is answered as the desk records an answer it heard.
        let caller = Caller {
            id: None,
            name: current
                .reporter
                .as_ref()
                .map_or_else(|| "reporter".to_owned(), |r| r.name.clone()),
            roles: Roles::new([if current.customer_id.is_some() {
                Role::Customer
            } else {
                Role::ServiceDesk
            }]),
            customer_id: current.customer_id,
        };
        execute(conn, id, None, &caller, command, settings, now).map(Some)
    })
}

/// Writes a decided incident over its row, one version after `before`'s. A closed incident
/// written here is one just closed (a closed row never changes again), so its closure is
/// added to the report summaries in the same transaction; a change of the text search reads,
/// or a note added in the same transaction (`note_added`), rewrites the incident's search
/// document there too.
pub(super) fn store_decided(
    conn: &mut PgConnection,
    incident: Incident,
    before: &Incident,
    now: DateTime<Utc>,
    timezone: Tz,
    note_added: bool,
) -> Result<Incident, StoreError> {
    let id = incident.id;
    let text_changed = IncidentText::of(&incident) != IncidentText::of(before);
    let mut next = IncidentRow::try_from(incident)?;
    next.updated_at = now;
    next.version = before.version + 1;
    let stored: Incident = diesel::update(incidents::table.find(id))
        .set(&next)
        .returning(IncidentRow::as_returning())
        .get_result::<IncidentRow>(conn)?
        .try_into()?;
    if text_changed || note_added {
        super::incident_text::reindex(conn, id)?;
    }
    if stored.status == Status::Closed {
        report_summaries::record_closure(conn, &stored, timezone)?;
        super::suggestions::index_resolved(conn, &stored)?;
    }
    Ok(stored)
}

/// The facts of a command that needs nothing looked up (a monitoring event's).
pub(super) fn plain_lookups(settings: &WriteSettings, now: DateTime<Utc>) -> Lookups<'_> {
    Lookups {
        upload_cutoff: settings.cutoff(),
        ..Lookups::nothing_looked_up(now, &settings.taxonomy, settings.follow_up_window)
    }
}

fn user_facts(conn: &mut PgConnection, id: i64) -> Result<Option<UserFacts>, StoreError> {
    Ok(
        super::users::find_optional(conn, id)?.map(|user| UserFacts {
            roles: user.roles(),
            id: user.id,
            active: user.active,
        }),
    )
}

/// Whether organisation `id` is active; `NULL` when there is none.
#[diesel::dsl::auto_type]
pub(super) fn customer_active(id: i64) -> _ {
    customers::table
        .find(id)
        .select(customers::active)
        .single_value()
}

fn customer_facts(conn: &mut PgConnection, id: i64) -> Result<Option<CustomerFacts>, StoreError> {
    let active: Option<bool> = diesel::select(customer_active(id)).get_result(conn)?;
    Ok(active.map(|active| CustomerFacts { id, active }))
}

pub(super) fn ci_ref(conn: &mut PgConnection, id: i64) -> Result<Option<CiRef>, StoreError> {
    Ok(
        super::configuration_items::find_optional(conn, id)?.map(|ci| CiRef {
            id: ci.id,
            customer_id: ci.customer_id,
        }),
    )
}
