//! Every write to an incident: load the facts the command needs, lock the row, ask the domain
//! for one decision, check the client's version, and write the outcome (the row, its history
//! entry, the note, the escalation and the webhook events) in one transaction.

use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;

use super::StoreError;
use super::combined::Combined;
use super::escalations;
use super::incidents::{IncidentRow, NewIncidentRow, NoteRow};
use super::schema::{customers, incident_history, incident_notes, incidents};
use super::{calendar, check_version, outbox, summaries};
use crate::domain::escalation::Escalation;
use crate::domain::incident::{Incident, IncidentView, Note, Status};
use crate::domain::sla::{Deadlines, UploadCutoff};
use crate::domain::taxonomy::Taxonomy;
use crate::domain::workflow::{
    self, Caller, CiRef, CreationLookups, CustomerFacts, HistoryEntry, IncidentCommand,
    IncidentDraft, IncidentEvent, Lookups, NewIncident, OnDuplicate, Outcome, UserFacts,
};

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

/// Creates an incident with its `created` history entry and `incident.created` event, in one
/// statement; or, when it duplicates an unresolved incident (SPEC §8), refuses it or records it
/// there, as `on_duplicate` says.
pub fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    draft: IncidentDraft,
    on_duplicate: Option<OnDuplicate>,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Reported, StoreError> {
    // Who may report for which organisation is settled before anything is read.
    let customer_id = workflow::customer_of_new(caller, draft.customer_id)?;
    // No transaction around the reads: under READ COMMITTED it would hold no locks on what they
    // read, so it would add two round trips and no guarantee. The writes are one statement, or
    // `execute`'s own transaction.
    let (customer, deadlines) = customer_and_deadlines(conn, customer_id, settings.timezone)?;
    let ci = draft
        .ci_id
        .map(|id| ci_ref(conn, id))
        .transpose()?
        .flatten();
    let recurrence = draft
        .recurrence_of
        .map(|id| super::incidents::find_ref(conn, id))
        .transpose()?
        .flatten();
    let lookups = CreationLookups {
        now,
        taxonomy: &settings.taxonomy,
        customer,
        ci,
        recurrence,
        deadlines,
        upload_cutoff: settings.cutoff(),
    };
    let new = workflow::new_incident(caller, draft, &lookups)?;
    let duplicate_of = match new.duplicate_signature() {
        Some(signature) if on_duplicate != Some(OnDuplicate::Create) => {
            super::incidents::find_unresolved_duplicate(conn, &signature)?
        }
        _ => None,
    };
    match (duplicate_of, on_duplicate) {
        (None, _) => insert(conn, new, now).map(Reported::Created),
        (Some(original), Some(OnDuplicate::Append)) => {
            let command = IncidentCommand::ReportAgain {
                title: new.title,
                description: Some(new.description),
            };
            execute(conn, original, None, caller, command, settings, now).map(|applied| {
                Reported::Appended {
                    incident: applied.incident,
                    open_customer_issue: applied.open_customer_issue,
                }
            })
        }
        (Some(original), _) => Err(StoreError::DuplicateIncident {
            duplicate_of: original,
        }),
    }
}

diesel::define_sql_function! {
    /// Draws the next value of a sequence.
    fn nextval(sequence: diesel::sql_types::Text) -> diesel::sql_types::BigInt;
}

/// Stores a decided new incident with its `created` history entry and `incident.created` event,
/// in one statement: the id is drawn first, so the entry and the event, which name the
/// incident, are known before anything is written.
pub(super) fn insert(
    conn: &mut PgConnection,
    new: NewIncident,
    now: DateTime<Utc>,
) -> Result<Incident, StoreError> {
    let id: i64 = diesel::select(nextval("incidents_id_seq")).get_result(conn)?;
    let author = new.created_by;
    let row = NewIncidentRow::try_from(new.clone())?;
    let incident = new.into_incident(id, Incident::number_for(id));
    let (entry, events) = workflow::created(&incident);
    let mut statement = Combined::new(
        diesel::insert_into(incidents::table)
            .values((incidents::id.eq(id), row))
            .returning(IncidentRow::as_returning()),
    )
    .with("history", history_insert(id, Some(author), now, entry)?);
    for (n, event) in events.into_iter().enumerate() {
        let data = event_data(&incident, None, now)?;
        statement = outbox::with_event(statement, &format!("event_{n}"), event.as_str(), now, data);
    }
    let stored = Incident::try_from(statement.get_result::<IncidentRow>(conn)?)?;
    if stored != incident {
        // The entry and the event describe `incident`; a column the database fills differently
        // would make them disagree with the row.
        log::error!("incident {id} was stored as {stored:?}, its journal says {incident:?}");
    }
    Ok(stored)
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
        // An entry that newly solved this incident counts the use.
        if let Some(entry) = outcome
            .incident
            .knowledge_entry_id
            .filter(|e| Some(*e) != current.knowledge_entry_id)
        {
            super::knowledge::count_use(conn, entry)?;
        }
        let stored: Incident = if outcome.changes_fields() {
            store_decided(
                conn,
                outcome.incident,
                current.version,
                now,
                settings.timezone,
            )?
        } else {
            current
        };
        let note = match (&outcome.note, caller.id) {
            (Some(note), Some(author)) => {
                let row: NoteRow = diesel::insert_into(incident_notes::table)
                    .values((
                        incident_notes::incident_id.eq(id),
                        incident_notes::author_id.eq(author),
                        incident_notes::visibility.eq(note.visibility.as_str()),
                        incident_notes::body.eq(&note.body),
                        incident_notes::created_at.eq(now),
                    ))
                    .returning(NoteRow::as_returning())
                    .get_result(conn)?;
                Some(Note::try_from(row)?)
            }
            _ => None,
        };
        if let Some(entry) = outcome.history {
            record(conn, id, caller.id, now, entry)?;
        }
        for event in outcome.events {
            let data = match (&escalation, event.is_about_escalation()) {
                (Some(escalation), true) => event_data(&stored, Some(escalation), now)?,
                // An escalation that was not recorded (another instance had it) is not news.
                (None, true) => continue,
                (_, false) => event_data(&stored, None, now)?,
            };
            emit(conn, event, now, data)?;
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

/// Writes a decided incident over its row, one version after `version`. A closed incident
/// written here is one just closed (a closed row never changes again), so its closure is
/// added to the report summaries in the same transaction.
fn store_decided(
    conn: &mut PgConnection,
    incident: Incident,
    version: i32,
    now: DateTime<Utc>,
    timezone: Tz,
) -> Result<Incident, StoreError> {
    let id = incident.id;
    let mut next = IncidentRow::try_from(incident)?;
    next.updated_at = now;
    next.version = version + 1;
    let stored: Incident = diesel::update(incidents::table.find(id))
        .set(&next)
        .returning(IncidentRow::as_returning())
        .get_result::<IncidentRow>(conn)?
        .try_into()?;
    if stored.status == Status::Closed {
        summaries::record_closure(conn, &stored, timezone)?;
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

/// Decisions made one after another on one locked incident, to be written at once.
#[derive(Debug)]
pub(super) struct Decided {
    /// The incident as loaded.
    pub before: Incident,
    /// The incident after every decision so far.
    pub current: Incident,
    /// The history entries, with their authors.
    pub entries: Vec<(Option<i64>, HistoryEntry)>,
    /// The webhook events.
    pub events: Vec<IncidentEvent>,
}

impl Decided {
    pub(super) fn new(incident: Incident) -> Self {
        Decided {
            before: incident.clone(),
            current: incident,
            entries: vec![],
            events: vec![],
        }
    }

    /// Takes in `outcome`, decided by the domain on the incident as the earlier decisions left
    /// it, by `actor`. Only outcomes that write no note, record no escalation and cancel no
    /// tickets can wait to be written together.
    pub(super) fn absorb(
        &mut self,
        actor: Option<i64>,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        if outcome.note.is_some()
            || outcome.escalation.is_some()
            || outcome.cancel_tickets.is_some()
        {
            return Err(StoreError::internal(
                "a batched decision wrote a note, an escalation or a cancellation",
            ));
        }
        self.entries
            .extend(outcome.history.map(|entry| (actor, entry)));
        self.events.extend(outcome.events);
        self.current = outcome.incident;
        Ok(())
    }

    /// Writes the final row (one version step) and the webhook events with the final incident;
    /// the history entries go to `history`, for the caller to write with others in one
    /// statement ([`write_history`]).
    pub(super) fn write(
        self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
        timezone: Tz,
        history: &mut Vec<PendingHistory>,
    ) -> Result<(), StoreError> {
        if self.entries.is_empty() && self.events.is_empty() {
            return Ok(());
        }
        let id = self.before.id;
        let stored: Incident = if self.current != self.before {
            store_decided(conn, self.current, self.before.version, now, timezone)?
        } else {
            self.current
        };
        history.extend(
            self.entries
                .into_iter()
                .map(|(actor, entry)| PendingHistory {
                    incident_id: id,
                    actor,
                    entry,
                }),
        );
        for event in self.events {
            emit(conn, event, now, event_data(&stored, None, now)?)?;
        }
        Ok(())
    }
}

/// A history entry decided but not yet written.
#[derive(Debug)]
pub(super) struct PendingHistory {
    incident_id: i64,
    actor: Option<i64>,
    entry: HistoryEntry,
}

/// Writes history entries in one statement.
pub(super) fn write_history(
    conn: &mut PgConnection,
    history: Vec<PendingHistory>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if history.is_empty() {
        return Ok(());
    }
    let rows = history
        .into_iter()
        .map(|pending| history_row(pending.incident_id, pending.actor, now, pending.entry))
        .collect::<Result<Vec<_>, StoreError>>()?;
    diesel::insert_into(incident_history::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}

/// Inserts one history entry (a part of a combined statement).
fn history_insert(
    incident_id: i64,
    actor: Option<i64>,
    now: DateTime<Utc>,
    entry: HistoryEntry,
) -> Result<impl QueryFragment<Pg> + Send + 'static, StoreError> {
    Ok(
        diesel::insert_into(incident_history::table).values(history_row(
            incident_id,
            actor,
            now,
            entry,
        )?),
    )
}

/// The columns of a history entry.
fn history_row(
    incident_id: i64,
    actor: Option<i64>,
    now: DateTime<Utc>,
    entry: HistoryEntry,
) -> Result<history_values, StoreError> {
    let changes = serde_json::to_value(entry.changes).map_err(StoreError::internal)?;
    Ok(history_values(
        incident_id,
        actor,
        now,
        entry.action,
        changes,
        entry.comment,
        entry.internal,
    ))
}

#[diesel::dsl::auto_type]
fn history_values(
    incident_id: i64,
    actor: Option<i64>,
    now: DateTime<Utc>,
    action: &'static str,
    changes: serde_json::Value,
    comment: Option<String>,
    internal: bool,
) -> _ {
    (
        incident_history::incident_id.eq(incident_id),
        incident_history::actor_id.eq(actor),
        incident_history::action.eq(action),
        incident_history::changes.eq(changes),
        incident_history::comment.eq(comment),
        incident_history::internal.eq(internal),
        incident_history::created_at.eq(now),
    )
}

/// The `data` of a webhook event: the incident as the API shows it and, for escalation events,
/// the escalation. Built as a map: `json!` would serialise the incident's JSON a second time.
fn event_data(
    incident: &Incident,
    escalation: Option<&Escalation>,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, StoreError> {
    let mut data = serde_json::Map::new();
    if let Some(escalation) = escalation {
        let escalation = serde_json::to_value(escalation).map_err(StoreError::internal)?;
        data.insert("escalation".to_owned(), escalation);
    }
    let incident = IncidentView::new(incident.clone(), now);
    let incident = serde_json::to_value(incident).map_err(StoreError::internal)?;
    data.insert("incident".to_owned(), incident);
    Ok(serde_json::Value::Object(data))
}

fn emit(
    conn: &mut PgConnection,
    event: IncidentEvent,
    now: DateTime<Utc>,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    outbox::emit(conn, event.as_str(), now, data).map(|_| ())
}

fn record(
    conn: &mut PgConnection,
    incident_id: i64,
    actor: Option<i64>,
    now: DateTime<Utc>,
    entry: HistoryEntry,
) -> Result<(), StoreError> {
    let pending = PendingHistory {
        incident_id,
        actor,
        entry,
    };
    write_history(conn, vec![pending], now)
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
fn customer_active(id: i64) -> _ {
    customers::table
        .find(id)
        .select(customers::active)
        .single_value()
}

fn customer_facts(conn: &mut PgConnection, id: i64) -> Result<Option<CustomerFacts>, StoreError> {
    let active: Option<bool> = diesel::select(customer_active(id)).get_result(conn)?;
    Ok(active.map(|active| CustomerFacts { id, active }))
}

/// [`customer_facts`] and the deadlines in force, in one statement: a create reads nothing
/// else before it decides, unless it names a configuration item or a recurrence.
fn customer_and_deadlines(
    conn: &mut PgConnection,
    id: i64,
    timezone: Tz,
) -> Result<(Option<CustomerFacts>, Deadlines), StoreError> {
    let (active, deadlines): (Option<bool>, calendar::DeadlineFacts) =
        diesel::select((customer_active(id), calendar::deadline_facts())).get_result(conn)?;
    Ok((
        active.map(|active| CustomerFacts { id, active }),
        calendar::deadlines_from(deadlines, timezone)?,
    ))
}

fn ci_ref(conn: &mut PgConnection, id: i64) -> Result<Option<CiRef>, StoreError> {
    Ok(
        super::configuration_items::find_optional(conn, id)?.map(|ci| CiRef {
            id: ci.id,
            customer_id: ci.customer_id,
        }),
    )
}
