//! Monitoring events (SPEC §8). Triggers for one `dedup_key` queue on the row lock of its open
//! incident, so concurrent senders on any number of server instances count every occurrence;
//! two first triggers racing to open the incident are decided by the unique index over open
//! incidents' keys, and the loser counts as an occurrence of the winner's incident.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::calendar;
use super::incident_writes::{self, WriteSettings};
use super::incidents::IncidentRow;
use super::schema::{configuration_items, customers, incidents};
use crate::domain::incident::Incident;
use crate::domain::monitoring::{
    Event, EventOutcome, EventPayload, EventStep, OpeningFacts, opened_incident,
};
use crate::domain::workflow::{Caller, IncidentCommand};
use crate::error::AppError;

/// Statuses in which an incident is open for its `dedup_key`.
const OPEN: [&str; 2] = ["new", "in_progress"];

/// How often a trigger may lose the race to open its key's incident before giving up; it can
/// lose only to a concurrent trigger, which then holds the open incident it finds next.
const OPENING_ATTEMPTS: usize = 3;

/// Runs one event by `caller` inside the caller's transaction (the intake writes a batch of
/// events in one) and tells what it did.
pub fn ingest_in(
    conn: &mut PgConnection,
    caller: &Caller,
    event: &Event,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<EventOutcome, AppError> {
    let author = caller
        .id
        .ok_or_else(|| AppError::internal("monitoring events are posted by a user"))?;
    for _ in 0..OPENING_ATTEMPTS {
        let open: Option<Incident> = incidents::table
            .filter(incidents::dedup_key.eq(&event.dedup_key))
            .filter(incidents::status.eq_any(OPEN))
            .select(IncidentRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .map(Incident::try_from)
            .transpose()?;
        let step = EventStep::of(event.action, open.as_ref().map(|i| i.status));
        let outcome = |incident_id| EventOutcome {
            dedup_key: event.dedup_key.clone(),
            result: step.result(),
            incident_id,
        };
        match (step, open, &event.payload) {
            (EventStep::Open, _, Some(payload)) => {
                let facts = opening_facts(conn, payload, settings, now)?;
                let new = opened_incident(author, event.dedup_key.clone(), payload, &facts);
                // A savepoint: losing the race must not abort the event's transaction.
                match conn.transaction(|conn| incident_writes::insert(conn, new, now)) {
                    Ok(incident) => return Ok(outcome(Some(incident.id))),
                    // The only unique key a new monitoring incident can collide on is the
                    // open-key index: another trigger opened it first.
                    Err(AppError::Conflict {
                        code: "already_exists",
                        ..
                    }) => continue,
                    Err(err) => return Err(err),
                }
            }
            (EventStep::Apply(command), Some(incident), _) => {
                let id = incident.id;
                let command = IncidentCommand::Monitoring(command);
                incident_writes::execute_locked(
                    conn, incident, None, caller, command, settings, now,
                )?;
                return Ok(outcome(Some(id)));
            }
            (EventStep::Ignore, _, _) => return Ok(outcome(None)),
            // A trigger always has a payload and an applied step an open incident; the
            // event parser and the step rules guarantee it.
            _ => return Err(AppError::internal("event step without its facts")),
        }
    }
    Err(AppError::internal(
        "a trigger kept losing the race to open its incident",
    ))
}

/// The customer the event names by code (an active one; else none), that customer's CI named
/// by `payload.component`, and the deadlines in force.
fn opening_facts(
    conn: &mut PgConnection,
    payload: &EventPayload,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<OpeningFacts, AppError> {
    let customer_id = match payload.customer_code() {
        Some(code) => customers::table
            .filter(customers::code.eq(code))
            .filter(customers::active.eq(true))
            .select(customers::id)
            .first::<i64>(conn)
            .optional()?,
        None => None,
    };
    let ci_id = match (customer_id, &payload.component) {
        (Some(customer_id), Some(component)) => configuration_items::table
            .filter(configuration_items::customer_id.eq(customer_id))
            .filter(configuration_items::name.eq(component))
            .select(configuration_items::id)
            .first::<i64>(conn)
            .optional()?,
        _ => None,
    };
    Ok(OpeningFacts {
        customer_id,
        ci_id,
        deadlines: calendar::deadlines(conn, settings.timezone)?,
        now,
    })
}
