//! What one monitoring event does (SPEC §8), decided in one place.
//!
//! The store locks the open incident of the event's `dedup_key` and hands it here with the
//! event; [`decide_event`] returns the whole decision: what the sender is told and what changes
//! (a new incident, or the open one's outcome with its history entry and webhook events, or
//! nothing). The store writes that in the same transaction and decides nothing itself.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Event, EventAction, EventPayload, EventResult, cut};
use crate::domain::incident::{Channel, Incident, IncidentKind, Status, Tier};
use crate::domain::sla::{self, Deadlines};
use crate::domain::state_machine::{MonitoringEvent, TransitionError};
use crate::domain::validation::FieldError;
use crate::domain::workflow::{Caller, IncidentCommand, Lookups, NewIncident, Outcome, decide};

const MAX_TITLE: usize = 200;
const MAX_SOURCE_SYSTEM: usize = 200;
const MAX_DESCRIPTION: usize = 10_000;

/// Statuses in which an incident is the open incident of its `dedup_key`: later events of the
/// key act on it, and a trigger opens another only once it is resolved.
pub const OPEN_STATUSES: [Status; 2] = [Status::New, Status::InProgress];

/// What an event changes.
#[derive(Debug, Clone, PartialEq)]
pub enum EventChange {
    /// Open this incident.
    Open(Box<NewIncident>),
    /// Write this outcome of the key's open incident: one more occurrence, a journal entry, or
    /// its own resolution.
    Update(Box<Outcome>),
    /// Nothing: no open incident has the key.
    Ignore,
}

/// The decision on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDecision {
    /// What the sender is told.
    pub result: EventResult,
    /// What the store writes.
    pub change: EventChange,
}

/// Decides `event` by `caller`, given `open`, the incident of the event's key the store locked
/// (any incident not in [`OPEN_STATUSES`] counts as none). `opening_facts` looks up what a new
/// incident needs; it is called only when the event opens one.
pub fn decide_event<E: From<TransitionError>>(
    caller: &Caller,
    event: &Event,
    open: Option<&Incident>,
    lookups: &Lookups<'_>,
    opening_facts: impl FnOnce(&EventPayload) -> Result<OpeningFacts, E>,
) -> Result<EventDecision, E> {
    let Some(incident) = open.filter(|incident| OPEN_STATUSES.contains(&incident.status)) else {
        return match (event.action, &event.payload) {
            (EventAction::Trigger, Some(payload)) => {
                let author = caller.id.ok_or_else(|| {
                    TransitionError::Forbidden("monitoring events are sent by a user".into())
                })?;
                let facts = opening_facts(payload)?;
                Ok(EventDecision {
                    result: EventResult::Created,
                    change: EventChange::Open(Box::new(opened_incident(
                        author,
                        event.dedup_key.clone(),
                        payload,
                        &facts,
                    ))),
                })
            }
            (EventAction::Trigger, None) => Err(TransitionError::Invalid(vec![FieldError::new(
                "payload",
                "required",
                "a trigger describes the fault in payload",
            )])
            .into()),
            (EventAction::Acknowledge | EventAction::Resolve, _) => Ok(EventDecision {
                result: EventResult::Ignored,
                change: EventChange::Ignore,
            }),
        };
    };
    let (command, result) = match (event.action, incident.status) {
        (EventAction::Trigger, _) => (MonitoringEvent::Occurrence, EventResult::Deduplicated),
        (EventAction::Acknowledge, _) => (MonitoringEvent::Acknowledge, EventResult::Noted),
        (EventAction::Resolve, Status::New) => {
            (MonitoringEvent::AutoResolve, EventResult::Resolved)
        }
        (EventAction::Resolve, _) => (MonitoringEvent::RecoveryReported, EventResult::Noted),
    };
    let outcome = decide(
        incident,
        caller,
        IncidentCommand::Monitoring(command),
        lookups,
    )?;
    Ok(EventDecision {
        result,
        change: EventChange::Update(Box::new(outcome)),
    })
}

/// What the store looked up for a trigger that opens an incident.
#[derive(Debug, Clone)]
pub struct OpeningFacts {
    /// The customer whose code the event named, when it exists.
    pub customer_id: Option<i64>,
    /// That customer's configuration item named by `payload.component`, when it exists.
    pub ci_id: Option<i64>,
    /// The deadlines in force.
    pub deadlines: Deadlines,
    /// Creation time.
    pub now: DateTime<Utc>,
}

/// The incident a trigger opens (SPEC §8): a fault reported by monitoring, without reporter,
/// its level from the severity.
pub fn opened_incident(
    created_by: i64,
    dedup_key: String,
    payload: &EventPayload,
    facts: &OpeningFacts,
) -> NewIncident {
    let level = payload.severity.level();
    let description = match &payload.custom_details {
        None => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(details) => serde_json::to_string_pretty(details).unwrap_or_default(),
    };
    NewIncident {
        kind: IncidentKind::Fault,
        channel: Channel::Monitoring,
        title: cut(payload.summary.trim(), MAX_TITLE),
        description: cut(&description, MAX_DESCRIPTION),
        customer_id: facts.customer_id,
        reporter: None,
        user_reported: false,
        source_system: Some(cut(payload.source.trim(), MAX_SOURCE_SYSTEM)),
        ci_id: facts.ci_id,
        category: None,
        subcategory: None,
        level,
        affects_onsite_work: false,
        affects_data_upload: false,
        status: Status::New,
        tier: Tier::L1,
        due_at: sla::initial_due_at(facts.now, level, &facts.deadlines, false, None),
        recurrence_of: None,
        dedup_key: Some(dedup_key),
        last_occurrence_at: Some(facts.now),
        created_by,
        created_at: facts.now,
        links: payload.links.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::level::Level;
    use crate::domain::monitoring::parse_event;
    use crate::domain::monitoring::tests::trigger;
    use crate::domain::sla::SlaTargets;

    #[test]
    fn a_trigger_opens_a_monitoring_fault_without_reporter() {
        let event = parse_event(&trigger()).unwrap();
        let mut payload = event.payload.unwrap();
        payload.summary = format!("  {}", "磁".repeat(300));
        let now = DateTime::parse_from_rfc3339("2025-01-06T08:00:00Z")
            .unwrap()
            .to_utc();
        let facts = OpeningFacts {
            customer_id: None,
            ci_id: None,
            deadlines: Deadlines::wall_clock(SlaTargets::procedure_defaults()),
            now,
        };
        let new = opened_incident(7, event.dedup_key, &payload, &facts);
        assert_eq!(new.channel, Channel::Monitoring);
        assert_eq!(new.kind, IncidentKind::Fault);
        assert_eq!(new.reporter, None);
        assert_eq!(new.title.chars().count(), 200);
        assert_eq!(new.level, Level::High);
        assert_eq!(new.due_at, now + chrono::Duration::hours(2));
        assert_eq!(new.source_system.as_deref(), Some("his-db-01"));
        assert!(new.description.contains("\"free\": \"0%\""));
        assert_eq!(new.dedup_key.as_deref(), Some("db-1/disk"));
        assert_eq!(new.customer_id, None);
    }
}
