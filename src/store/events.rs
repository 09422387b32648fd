//! Monitoring events (SPEC §8): each event runs in one transaction that first takes a lock on
//! its `dedup_key`, so concurrent senders on any number of server instances queue per key and a
//! storm of triggers opens exactly one incident. The unique index over open incidents' keys
//! holds the same rule in the schema.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::incident_writes::{self, WriteSettings};
use super::schema::{configuration_items, customers, incidents};
use super::{calendar, parse_stored};
use crate::domain::incident::Status;
use crate::domain::monitoring::{
    Event, EventOutcome, EventPayload, EventStep, OpeningFacts, opened_incident,
};
use crate::domain::workflow::{Caller, IncidentCommand};
use crate::error::AppError;

/// Statuses in which an incident is open for its `dedup_key`.
const OPEN: [&str; 2] = ["new", "in_progress"];

/// Runs one event by `caller` and tells what it did.
pub fn ingest(
    conn: &mut PgConnection,
    caller: &Caller,
    event: &Event,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<EventOutcome, AppError> {
    let author = caller
        .id
        .ok_or_else(|| AppError::internal("monitoring events are posted by a user"))?;
    conn.transaction(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<Text, _>(&event.dedup_key)
            .execute(conn)?;
        let open: Option<(i64, String)> = incidents::table
            .filter(incidents::dedup_key.eq(&event.dedup_key))
            .filter(incidents::status.eq_any(OPEN))
            .select((incidents::id, incidents::status))
            .first(conn)
            .optional()?;
        let open = open
            .map(|(id, status)| Ok::<_, AppError>((id, parse_stored::<Status>(&status)?)))
            .transpose()?;
        let step = EventStep::of(event.action, open.map(|(_, status)| status));
        let incident_id = match (step, open, &event.payload) {
            (EventStep::Open, _, Some(payload)) => {
                let facts = opening_facts(conn, payload, settings, now)?;
                let new = opened_incident(author, event.dedup_key.clone(), payload, &facts);
                Some(incident_writes::insert(conn, new, now)?.id)
            }
            (EventStep::Apply(command), Some((id, _)), _) => {
                let command = IncidentCommand::Monitoring(command);
                incident_writes::execute(conn, id, None, caller, command, settings, now)?;
                Some(id)
            }
            (EventStep::Ignore, _, _) => None,
            // A trigger always has a payload and an applied step an open incident; the event
            // parser and the step rules guarantee it.
            _ => return Err(AppError::internal("event step without its facts")),
        };
        Ok(EventOutcome {
            dedup_key: event.dedup_key.clone(),
            result: step.result(),
            incident_id,
        })
    })
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
