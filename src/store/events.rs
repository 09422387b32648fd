//! Monitoring events (SPEC §8). Triggers for one `dedup_key` queue on the row lock of its open
//! incident, so concurrent senders on any number of server instances count every occurrence;
//! two first triggers racing to open the incident are decided by the unique index over open
//! incidents' keys, and the loser counts as an occurrence of the winner's incident.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::calendar;
use super::incident_writes::{self, Decided, PendingHistory, WriteSettings};
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

/// Runs a batch of events inside the caller's transaction and tells what each did, in the
/// order given. The open incidents of all keys are locked at once, in key order (so batches
/// never deadlock each other); the events of one key are decided one after another on its
/// incident in memory, which is then written once; every history entry of the batch goes in one
/// statement. A burst of triggers thus costs one `UPDATE` per key, not one per trigger.
pub fn ingest_batch(
    conn: &mut PgConnection,
    events: &[(&Caller, &Event)],
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Vec<EventOutcome>, AppError> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|a, b| events[*a].1.dedup_key.cmp(&events[*b].1.dedup_key));
    let mut keys: Vec<&str> = order
        .iter()
        .map(|i| events[*i].1.dedup_key.as_str())
        .collect();
    keys.dedup();
    let mut open: HashMap<String, Incident> = incidents::table
        .filter(incidents::dedup_key.eq_any(&keys))
        .filter(incidents::status.eq_any(OPEN))
        .select(IncidentRow::as_select())
        .order(incidents::dedup_key.asc())
        .for_update()
        .load(conn)?
        .into_iter()
        .map(|row| {
            let incident = Incident::try_from(row)?;
            Ok((incident.dedup_key.clone().unwrap_or_default(), incident))
        })
        .collect::<Result<_, AppError>>()?;
    let mut history = Vec::new();
    let mut outcomes: Vec<Option<EventOutcome>> = vec![None; events.len()];
    for run in order.chunk_by(|a, b| events[*a].1.dedup_key == events[*b].1.dedup_key) {
        let key = events[run[0]].1.dedup_key.as_str();
        let run_events: Vec<(&Caller, &Event)> = run.iter().map(|i| events[*i]).collect();
        let answered = ingest_run(
            conn,
            &run_events,
            open.remove(key),
            settings,
            now,
            &mut history,
        )?;
        for (index, outcome) in run.iter().zip(answered) {
            outcomes[*index] = Some(outcome);
        }
    }
    incident_writes::write_history(conn, history, now)?;
    Ok(outcomes.into_iter().flatten().collect())
}

/// Runs events that share one `dedup_key`, in order, on `open`, the key's open incident the
/// caller locked. Each event is decided on the incident as the ones before it left it.
fn ingest_run(
    conn: &mut PgConnection,
    run: &[(&Caller, &Event)],
    open: Option<Incident>,
    settings: &WriteSettings,
    now: DateTime<Utc>,
    history: &mut Vec<PendingHistory>,
) -> Result<Vec<EventOutcome>, AppError> {
    let lookups = incident_writes::plain_lookups(settings, now);
    let mut open = open.map(Decided::new);
    let mut outcomes = Vec::with_capacity(run.len());
    for (caller, event) in run {
        let status = open
            .as_ref()
            .map(|d| d.current.status)
            .filter(|status| OPEN.contains(&status.as_str()));
        let step = EventStep::of(event.action, status);
        let incident_id = match (step, &event.payload) {
            (EventStep::Open, Some(payload)) => {
                if let Some(done) = open.take() {
                    done.write(conn, now, settings.timezone, history)?;
                }
                let (incident, step) = open_incident(conn, caller, event, payload, settings, now)?;
                let id = incident.current.id;
                open = Some(incident);
                outcomes.push(outcome(event, step, Some(id)));
                continue;
            }
            (EventStep::Apply(command), _) => {
                let decided = open
                    .as_mut()
                    .ok_or_else(|| AppError::internal("an applied step without its incident"))?;
                decided.decide(caller, IncidentCommand::Monitoring(command), &lookups)?;
                Some(decided.current.id)
            }
            (EventStep::Ignore, _) => None,
            (EventStep::Open, None) => {
                return Err(AppError::internal("a trigger without its payload"));
            }
        };
        outcomes.push(outcome(event, step, incident_id));
    }
    if let Some(done) = open {
        done.write(conn, now, settings.timezone, history)?;
    }
    Ok(outcomes)
}

fn outcome(event: &Event, step: EventStep, incident_id: Option<i64>) -> EventOutcome {
    EventOutcome {
        dedup_key: event.dedup_key.clone(),
        result: step.result(),
        incident_id,
    }
}

/// The open incident of `key`, locked for this transaction.
fn lock_open(conn: &mut PgConnection, key: &str) -> Result<Option<Incident>, AppError> {
    incidents::table
        .filter(incidents::dedup_key.eq(key))
        .filter(incidents::status.eq_any(OPEN))
        .select(IncidentRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
        .map(Incident::try_from)
        .transpose()
}

/// Opens the incident of a trigger; when a concurrent trigger opened it first (the unique index
/// over open keys says so), the trigger counts as an occurrence of that one instead.
fn open_incident(
    conn: &mut PgConnection,
    caller: &Caller,
    event: &Event,
    payload: &EventPayload,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<(Decided, EventStep), AppError> {
    let author = caller
        .id
        .ok_or_else(|| AppError::internal("monitoring events are posted by a user"))?;
    for _ in 0..OPENING_ATTEMPTS {
        let facts = opening_facts(conn, payload, settings, now)?;
        let new = opened_incident(author, event.dedup_key.clone(), payload, &facts);
        // A savepoint: losing the race must not abort the batch's transaction.
        match conn.transaction(|conn| incident_writes::insert(conn, new, now)) {
            Ok(incident) => return Ok((Decided::new(incident), EventStep::Open)),
            // The only unique key a new monitoring incident can collide on is the open-key
            // index: another trigger opened it first.
            Err(AppError::Conflict {
                code: "already_exists",
                ..
            }) => {
                if let Some(winner) = lock_open(conn, &event.dedup_key)? {
                    let mut decided = Decided::new(winner);
                    let step = EventStep::of(event.action, Some(decided.current.status));
                    if let EventStep::Apply(command) = step {
                        let lookups = incident_writes::plain_lookups(settings, now);
                        decided.decide(caller, IncidentCommand::Monitoring(command), &lookups)?;
                    }
                    return Ok((decided, step));
                }
            }
            Err(err) => return Err(err),
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
