//! The journal of incident writes: history entries and the webhook events of the outbox, and
//! the batch of decisions on one locked incident that monitoring events make.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;

use crate::domain::escalation::Escalation;
use crate::domain::incident::{Incident, IncidentView};
use crate::domain::notification;
use crate::domain::workflow::{HistoryEntry, IncidentEvent, Outcome};
use crate::store::StoreError;
use crate::store::notifications;
use crate::store::outbox;
use crate::store::schema::incident_history;

use super::store_decided;

/// Decisions made one after another on one locked incident, to be written at once.
#[derive(Debug)]
pub(in crate::store) struct Decided {
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
    pub(in crate::store) fn new(incident: Incident) -> Self {
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
    pub(in crate::store) fn absorb(
        &mut self,
        actor: Option<i64>,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        if outcome.note.is_some()
            || outcome.escalation.is_some()
            || outcome.cancel_tickets.is_some()
            || outcome.knowledge_used.is_some()
        {
            return Err(StoreError::internal(
                "a batched decision wrote a note, an escalation, a cancellation or a knowledge use",
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
    pub(in crate::store) fn write(
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
        // The batch's events are the last trigger's doing.
        let actor = self.entries.last().and_then(|(actor, _)| *actor);
        let stored: Incident = if self.current != self.before {
            store_decided(conn, self.current, &self.before, now, timezone, false)?
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
        // Each type once: every event carries the incident as the batch left it, so a burst of
        // occurrences is one `incident.updated`, not one per trigger.
        let mut emitted: Vec<IncidentEvent> = Vec::with_capacity(self.events.len());
        for event in self.events {
            if !emitted.contains(&event) {
                emit(
                    conn,
                    event,
                    &stored,
                    actor,
                    now,
                    event_data(&stored, None, now)?,
                )?;
                emitted.push(event);
            }
        }
        Ok(())
    }
}

/// A history entry decided but not yet written.
#[derive(Debug)]
pub(in crate::store) struct PendingHistory {
    incident_id: i64,
    actor: Option<i64>,
    entry: HistoryEntry,
}

/// Writes history entries in one statement.
pub(in crate::store) fn write_history(
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
pub(super) fn history_insert(
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
pub(super) fn event_data(
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

/// Emits `event` about `incident`, with `data`, and queues the message that tells the reporter
/// of it, if any (SPEC §12).
pub(super) fn emit(
    conn: &mut PgConnection,
    event: IncidentEvent,
    incident: &Incident,
    actor: Option<i64>,
    now: DateTime<Utc>,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    outbox::emit(conn, outbox_event(event, incident, actor), now, data)?;
    if let Some(kind) = notification::kind_of_event(event) {
        notifications::Queue::new(incident, kind, None, now).execute(conn)?;
    }
    Ok(())
}

/// The outbox's view of `event` about `incident`.
pub(super) fn outbox_event(
    event: IncidentEvent,
    incident: &Incident,
    actor: Option<i64>,
) -> outbox::Event<'static> {
    outbox::Event {
        event_type: event.as_str(),
        customer_id: incident.customer_id,
        actor_id: actor,
    }
}

pub(in crate::store) fn record(
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
