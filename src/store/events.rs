//! Monitoring events (SPEC §8). Triggers for one `dedup_key` queue on the row lock of its open
//! incident, so concurrent senders on any number of server instances count every occurrence;
//! two first triggers racing to open the incident are decided by the unique index over open
//! incidents' keys, and the loser counts as an occurrence of the winner's incident.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::calendar;
use super::credentials::Credential;
use super::incident_writes::{self, Decided, PendingHistory, WriteSettings};
use super::incidents::IncidentRow;
use super::schema::{configuration_items, customers, incidents};
use super::users::UserRow;
use crate::domain::incident::Incident;
use crate::domain::monitoring::{
    self, Event, EventChange, EventDecision, EventOutcome, EventPayload, OPEN_STATUSES,
    OpeningFacts, Proof,
};
use crate::domain::workflow::{Caller, NewIncident};

/// How often a trigger may lose the race to open its key's incident before giving up; it can
/// lose only to a concurrent trigger, which then holds the open incident it finds next.
const OPENING_ATTEMPTS: usize = 3;

/// The statuses of [`OPEN_STATUSES`], as stored.
fn open_statuses() -> [&'static str; 2] {
    OPEN_STATUSES.map(|status| status.as_str())
}

/// Who sends events, and how they proved it (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sender {
    /// An `Authorization` header: an integration token or a staff access token.
    Header(Credential),
    /// An event's `routing_key`: an integration API token only.
    RoutingKey(Credential),
}

impl Sender {
    /// The caller this sender is, when it may send events.
    fn caller(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Caller, StoreError> {
        let user = match self {
            Sender::Header(credential) => {
                let user = credential.load(conn, now)?.0;
                if !monitoring::may_send(&user.roles(), Proof::Header) {
                    return Err(StoreError::forbidden(
                        "Events are posted by integrations and staff.",
                    ));
                }
                user
            }
            Sender::RoutingKey(credential) => {
                let user = credential.load(conn, now).map_err(|_| no_routing_key())?.0;
                if !monitoring::may_send(&user.roles(), Proof::RoutingKey) {
                    return Err(no_routing_key());
                }
                user
            }
        };
        Ok(caller_of(&user))
    }
}

/// 401 for an event that names no usable sender.
pub fn no_routing_key() -> StoreError {
    StoreError::Unauthorized(
        "Send an Authorization: Bearer header, or an API token of role integration as routing_key."
            .into(),
    )
}

fn caller_of(user: &UserRow) -> Caller {
    Caller {
        id: Some(user.id),
        name: user.display_name.clone(),
        roles: user.roles(),
        customer_id: user.customer_id,
    }
}

/// The answer to one sender's events: what each did, or why the sender was refused.
pub type JobAnswer = Result<Vec<EventOutcome>, StoreError>;

/// Writes the events of several senders in one transaction; answers each sender in order. A
/// sender that may not send gets its refusal; any other failure fails the whole batch (the
/// caller then retries each job with [`write_job`]).
pub fn write_batch(
    conn: &mut PgConnection,
    work: &[(Sender, Vec<Event>)],
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Vec<JobAnswer>, StoreError> {
    conn.transaction(|conn| {
        let mut callers: HashMap<&Sender, Caller> = HashMap::new();
        let mut answers: Vec<JobAnswer> = Vec::with_capacity(work.len());
        for (sender, _) in work {
            if callers.contains_key(sender) {
                answers.push(Ok(vec![]));
                continue;
            }
            match sender.caller(conn, now) {
                Ok(caller) => {
                    callers.insert(sender, caller);
                    answers.push(Ok(vec![]));
                }
                Err(refusal @ (StoreError::Unauthorized(_) | StoreError::Forbidden(_))) => {
                    answers.push(Err(refusal));
                }
                Err(failure) => return Err(failure),
            }
        }
        let accepted: Vec<usize> = (0..work.len())
            .filter(|job| answers[*job].is_ok())
            .collect();
        let batch: Vec<(&Caller, &Event)> = accepted
            .iter()
            .flat_map(|job| {
                let (sender, events) = &work[*job];
                let caller = &callers[sender];
                events.iter().map(move |event| (caller, event))
            })
            .collect();
        let mut answered = ingest_batch(conn, &batch, settings, now)?.into_iter();
        let mut outcomes: Vec<Vec<EventOutcome>> = vec![vec![]; work.len()];
        for job in accepted {
            outcomes[job] = answered.by_ref().take(work[job].1.len()).collect();
        }
        Ok(answers
            .into_iter()
            .zip(outcomes)
            .map(|(answer, outcomes)| answer.map(|_| outcomes))
            .collect())
    })
}

/// Writes one sender's events in a transaction of their own. The outer `Result` fails the
/// transaction; the inner one is the sender's answer.
pub fn write_job(
    conn: &mut PgConnection,
    sender: &Sender,
    events: &[Event],
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<JobAnswer, StoreError> {
    conn.transaction(|conn| {
        let caller = match sender.caller(conn, now) {
            Ok(caller) => caller,
            Err(refusal @ (StoreError::Unauthorized(_) | StoreError::Forbidden(_))) => {
                return Ok(Err(refusal));
            }
            Err(failure) => return Err(failure),
        };
        let batch: Vec<(&Caller, &Event)> = events.iter().map(|event| (&caller, event)).collect();
        Ok(Ok(ingest_batch(conn, &batch, settings, now)?))
    })
}

/// Runs a batch of events inside the caller's transaction and tells what each did, in the
/// order given. The open incidents of all keys are locked at once, in key order (so batches
/// never deadlock each other); the events of one key are decided one after another on its
/// incident in memory, which is then written once; every history entry of the batch goes in one
/// statement. A burst of triggers thus costs one `UPDATE` per key, not one per trigger.
fn ingest_batch(
    conn: &mut PgConnection,
    events: &[(&Caller, &Event)],
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<Vec<EventOutcome>, StoreError> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|a, b| events[*a].1.dedup_key.cmp(&events[*b].1.dedup_key));
    let mut keys: Vec<&str> = order
        .iter()
        .map(|i| events[*i].1.dedup_key.as_str())
        .collect();
    keys.dedup();
    let mut open: HashMap<String, Incident> = incidents::table
        .filter(incidents::dedup_key.eq_any(&keys))
        .filter(incidents::status.eq_any(open_statuses()))
        .select(IncidentRow::as_select())
        .order(incidents::dedup_key.asc())
        .for_update()
        .load(conn)?
        .into_iter()
        .map(|row| {
            let incident = Incident::try_from(row)?;
            Ok((incident.dedup_key.clone().unwrap_or_default(), incident))
        })
        .collect::<Result<_, StoreError>>()?;
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
) -> Result<Vec<EventOutcome>, StoreError> {
    let lookups = incident_writes::plain_lookups(settings, now);
    let mut open = open.map(Decided::new);
    let mut outcomes = Vec::with_capacity(run.len());
    for (caller, event) in run {
        let decision = monitoring::decide_event(
            caller,
            event,
            open.as_ref().map(|decided| &decided.current),
            &lookups,
            |payload| opening_facts(conn, payload, settings, now),
        )?;
        let result = decision.result;
        let incident_id = match decision.change {
            EventChange::Open(new) => {
                if let Some(done) = open.take() {
                    done.write(conn, now, settings.timezone, history)?;
                }
                let (incident, result) = open_incident(conn, caller, event, *new, settings, now)?;
                let id = incident.current.id;
                open = Some(incident);
                outcomes.push(outcome(event, result, Some(id)));
                continue;
            }
            EventChange::Update(change) => {
                let decided = open
                    .as_mut()
                    .ok_or_else(|| StoreError::internal("an update without its incident"))?;
                decided.absorb(caller.id, *change)?;
                Some(decided.current.id)
            }
            EventChange::Ignore => None,
        };
        outcomes.push(outcome(event, result, incident_id));
    }
    if let Some(done) = open {
        done.write(conn, now, settings.timezone, history)?;
    }
    Ok(outcomes)
}

fn outcome(
    event: &Event,
    result: monitoring::EventResult,
    incident_id: Option<i64>,
) -> EventOutcome {
    EventOutcome {
        dedup_key: event.dedup_key.clone(),
        result,
        incident_id,
    }
}

/// The open incident of `key`, locked for this transaction.
fn lock_open(conn: &mut PgConnection, key: &str) -> Result<Option<Incident>, StoreError> {
    incidents::table
        .filter(incidents::dedup_key.eq(key))
        .filter(incidents::status.eq_any(open_statuses()))
        .select(IncidentRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
        .map(Incident::try_from)
        .transpose()
}

/// Stores the incident a trigger opens; when a concurrent trigger opened the key's incident
/// first (the unique index over open keys says so), the event is decided again on that one.
fn open_incident(
    conn: &mut PgConnection,
    caller: &Caller,
    event: &Event,
    new: NewIncident,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<(Decided, monitoring::EventResult), StoreError> {
    let mut new = new;
    for _ in 0..OPENING_ATTEMPTS {
        // A savepoint: losing the race must not abort the batch's transaction.
        match conn.transaction(|conn| incident_writes::insert(conn, new.clone(), false, now)) {
            Ok(incident) => {
                return Ok((Decided::new(incident), monitoring::EventResult::Created));
            }
            // The only unique key a new monitoring incident can collide on is the open-key
            // index: another trigger opened it first.
            Err(StoreError::AlreadyExists) => {
                let winner = lock_open(conn, &event.dedup_key)?;
                let lookups = incident_writes::plain_lookups(settings, now);
                let EventDecision { result, change } = monitoring::decide_event(
                    caller,
                    event,
                    winner.as_ref(),
                    &lookups,
                    |payload| opening_facts(conn, payload, settings, now),
                )?;
                match (change, winner) {
                    (EventChange::Update(change), Some(winner)) => {
                        let mut decided = Decided::new(winner);
                        decided.absorb(caller.id, *change)?;
                        return Ok((decided, result));
                    }
                    // The winner was resolved meanwhile: open again.
                    (EventChange::Open(again), _) => new = *again,
                    (_, winner) => {
                        let id = winner.map_or(0, |w| w.id);
                        return Err(StoreError::internal(format!(
                            "a trigger on {id} was decided as neither an update nor an opening"
                        )));
                    }
                }
            }
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::internal(
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
) -> Result<OpeningFacts, StoreError> {
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
