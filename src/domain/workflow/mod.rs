//! One decision per incident write.
//!
//! [`decide`] takes the incident, the caller, the command with its payload and the facts the
//! store looked up beforehand ([`Lookups`]), and returns either a refusal or the whole
//! [`Outcome`]: the incident's new fields, the history entry, the note, the escalation record
//! and the webhook events. [`new_incident`] does the same for creation. The store only loads the
//! facts a command [`needs`](IncidentCommand::needs), locks the row, calls one of them and
//! writes what they return; nothing here touches HTTP or the database.

mod apply;
mod command;
mod create;
#[cfg(test)]
mod tests;

pub use command::{EscalationRequest, IncidentCommand, IncidentEdit, Needs, Resolution};
pub use create::{
    CreationLookups, CustomerFacts, DuplicateSignature, IncidentDraft, NewIncident, OnDuplicate,
    created, customer_of_new, new_incident,
};

use chrono::{DateTime, Utc};

use super::changes::FieldChange;
use super::escalation::{EscalationKind, EscalationRecord, EscalationTrigger, SlaTrigger};
use super::incident::{ClosureCode, Incident, NoteVisibility, Status};
use super::role::{Role, Roles};
use super::sla::{Deadlines, UploadCutoff};
use super::state_machine::{self, Action, Actor, Command, Escalation, Facts, TransitionError};
use super::taxonomy::Taxonomy;
use super::validation::FieldError;
/// Who is acting on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user; `None` for the server's own jobs (the SLA watcher).
    pub id: Option<i64>,
    /// Display name, recorded as the reporter when a customer user reports.
    pub name: String,
    /// Current roles.
    pub roles: Roles,
    /// Organisation of a customer user.
    pub customer_id: Option<i64>,
}

impl Caller {
    /// The organisation a customer user is confined to; `None` for everyone else.
    pub fn confined_to_customer(&self) -> Option<i64> {
        if self.roles.has(Role::Customer) {
            self.customer_id
        } else {
            None
        }
    }

    /// True when the caller may know that `incident` exists (SPEC §2).
    pub fn sees(&self, incident: &Incident) -> bool {
        self.confined_to_customer()
            .is_none_or(|own| Some(own) == incident.customer_id)
    }

    fn actor(&self) -> Actor<'_> {
        Actor {
            roles: &self.roles,
            customer_id: self.customer_id,
        }
    }
}

/// A user named by a command, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    /// Id.
    pub id: i64,
    /// Can still sign in and work.
    pub active: bool,
    /// Roles.
    pub roles: Roles,
}

/// Another incident named by a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentRef {
    /// Id.
    pub id: i64,
    /// Its organisation.
    pub customer_id: Option<i64>,
    /// Its status.
    pub status: Status,
}

/// A configuration item named by a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CiRef {
    /// Id.
    pub id: i64,
    /// Its organisation.
    pub customer_id: i64,
}

/// The facts looked up before a decision; what a command does not [`need`](Needs) is `None`.
#[derive(Debug, Clone)]
pub struct Lookups<'a> {
    /// The time of the change.
    pub now: DateTime<Utc>,
    /// The classification and cause codes.
    pub taxonomy: &'a Taxonomy,
    /// The user the command names, when it exists.
    pub user: Option<UserFacts>,
    /// The other incident the command names, when it exists.
    pub incident: Option<IncidentRef>,
    /// The configuration item the command names, when it exists.
    pub ci: Option<CiRef>,
    /// The customer organisation the command names, when it exists.
    pub customer: Option<CustomerFacts>,
    /// A `customer_issue` coordination ticket of this incident is open or accepted.
    pub open_customer_issue: bool,
    /// The deadlines in force, when the command may change the level.
    pub deadlines: Option<Deadlines>,
    /// The daily upload cut-off, when configured.
    pub upload_cutoff: Option<UploadCutoff>,
    /// How long after closing a user-reported incident its follow-up is due (SPEC §9).
    pub follow_up_window: chrono::Duration,
    /// The knowledge entry the command names, when it exists: its id and whether it is
    /// published.
    pub knowledge_entry: Option<(i64, bool)>,
}

impl<'a> Lookups<'a> {
    /// The facts of a command that needs nothing looked up: only the time and the settings every
    /// decision reads.
    pub fn nothing_looked_up(
        now: DateTime<Utc>,
        taxonomy: &'a Taxonomy,
        follow_up_window: chrono::Duration,
    ) -> Self {
        Lookups {
            now,
            taxonomy,
            user: None,
            incident: None,
            ci: None,
            customer: None,
            open_customer_issue: false,
            deadlines: None,
            upload_cutoff: None,
            follow_up_window,
            knowledge_entry: None,
        }
    }
}

/// A note to write with a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    /// Who may read it.
    pub visibility: NoteVisibility,
    /// Text.
    pub body: String,
    /// Attachments of the incident it names (SPEC §13).
    pub attachment_ids: Vec<i64>,
}

/// Webhook events a change emits (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentEvent {
    /// `incident.created`.
    Created,
    /// `incident.resolved`.
    Resolved,
    /// `incident.closed`.
    Closed,
    /// `escalation.created`.
    EscalationCreated,
    /// `sla.warning`.
    SlaWarning,
    /// `sla.breached`.
    SlaBreached,
    /// `incident.assigned`: handed to another engineer.
    Assigned,
    /// `incident.accepted`: taken into work.
    Accepted,
    /// `incident.confirmed`: the reporter confirmed the resolution.
    Confirmed,
    /// `incident.resolution_rejected`: the reporter rejected it; back in progress.
    ResolutionRejected,
    /// `incident.withdrawn`: the reporter asked to drop it.
    Withdrawn,
    /// `note.created`: a note was added (the event carries it).
    NoteCreated,
    /// `incident.updated`: fields changed by anything without an event of its own (an edit, a
    /// workaround, a coordination result, a monitoring occurrence or recovery, a report
    /// appended, a level change).
    Updated,
}

impl IncidentEvent {
    /// The event type subscribers choose.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentEvent::Created => "incident.created",
            IncidentEvent::Resolved => "incident.resolved",
            IncidentEvent::Closed => "incident.closed",
            IncidentEvent::EscalationCreated => "escalation.created",
            IncidentEvent::SlaWarning => "sla.warning",
            IncidentEvent::SlaBreached => "sla.breached",
            IncidentEvent::Assigned => "incident.assigned",
            IncidentEvent::Accepted => "incident.accepted",
            IncidentEvent::Confirmed => "incident.confirmed",
            IncidentEvent::ResolutionRejected => "incident.resolution_rejected",
            IncidentEvent::Withdrawn => "incident.withdrawn",
            IncidentEvent::NoteCreated => "note.created",
            IncidentEvent::Updated => "incident.updated",
        }
    }

    /// True for events about the escalation written with the change (only sent when the
    /// escalation was actually recorded).
    pub fn is_about_escalation(self) -> bool {
        matches!(
            self,
            IncidentEvent::EscalationCreated
                | IncidentEvent::SlaWarning
                | IncidentEvent::SlaBreached
        )
    }
}

/// The append-only history entry of a change.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// `created`, `edit`, `accept`, `escalate`, ...
    pub action: &'static str,
    /// Fields that changed, old → new.
    pub changes: Vec<FieldChange>,
    /// A reason or note given with the action.
    pub comment: Option<String>,
    /// Hidden from customer users (SPEC §4.3: see [`history_visibility`]).
    pub internal: bool,
}

/// What a decision changes; the store writes all of it in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The incident as it is to be stored (equal to the current one when nothing changes).
    pub incident: Incident,
    /// The history entry; `None` when nothing happened that is worth recording.
    pub history: Option<HistoryEntry>,
    /// A note to write.
    pub note: Option<NewNote>,
    /// An escalation to record.
    pub escalation: Option<EscalationRecord>,
    /// Webhook events to emit.
    pub events: Vec<IncidentEvent>,
    /// The incident was closed: its open or accepted coordination tickets are cancelled with
    /// this reason, in the same transaction (SPEC §6).
    pub cancel_tickets: Option<String>,
    /// The published knowledge entry that newly solved the incident: its use is counted, in
    /// the same transaction (SPEC §7).
    pub knowledge_used: Option<i64>,
}

impl Outcome {
    /// Nothing to do.
    fn nothing(current: &Incident) -> Self {
        Outcome {
            incident: current.clone(),
            history: None,
            note: None,
            escalation: None,
            events: vec![],
            cancel_tickets: None,
            knowledge_used: None,
        }
    }

    /// True when the incident's fields change.
    pub fn changes_fields(&self) -> bool {
        self.history.as_ref().is_some_and(|h| !h.changes.is_empty())
    }
}

/// What a command adds besides the new fields.
#[derive(Default)]
struct Effect {
    comment: Option<String>,
    note: Option<NewNote>,
    escalation: Option<EscalationRecord>,
}

fn invalid(field: &str, code: &str, message: impl Into<String>) -> TransitionError {
    TransitionError::Invalid(vec![FieldError::new(field, code, message)])
}

/// A configuration item named for an incident of `customer_id` must exist and be that
/// customer's; an incident of no known customer names none until the customer is set. A caller
/// confined to one organisation hears of another organisation's item exactly what it hears of a
/// missing one, so the answer cannot tell it which ids exist.
fn check_ci(
    id: i64,
    found: Option<CiRef>,
    customer_id: Option<i64>,
    caller: &Caller,
) -> Result<(), TransitionError> {
    let Some(customer_id) = customer_id else {
        return Err(invalid(
            "ci_id",
            "invalid",
            "set the incident's customer before naming a configuration item",
        ));
    };
    let missing = || {
        invalid(
            "ci_id",
            "not_found",
            format!("configuration item {id} does not exist"),
        )
    };
    match found.filter(|ci| ci.id == id) {
        Some(ci) if ci.customer_id == customer_id => Ok(()),
        Some(_) if caller.confined_to_customer().is_some() => Err(missing()),
        Some(_) => Err(invalid(
            "ci_id",
            "invalid",
            "the configuration item belongs to another customer",
        )),
        None => Err(missing()),
    }
}

fn machine_facts(incident: &Incident, open_customer_issue: bool) -> Facts {
    Facts {
        status: incident.status,
        tier: incident.tier,
        customer_id: incident.customer_id,
        user_reported: incident.user_reported,
        user_confirmed: incident.user_confirmed_at.is_some(),
        withdrawal_requested: incident.withdrawal_requested_at.is_some(),
        classified: incident.classified(),
        open_customer_issue,
    }
}

/// Decides whether `caller` may add or remove files of `current` (SPEC §13): 404 when the
/// caller may not know the incident, then the state machine's answer (a closed incident's files
/// never change).
pub fn decide_files(
    current: &Incident,
    caller: &Caller,
    command: Command,
) -> Result<(), TransitionError> {
    if !caller.sees(current) {
        return Err(TransitionError::NotFound {
            what: "incident",
            id: current.id,
        });
    }
    if !matches!(command, Command::Attach(_) | Command::Detach { .. }) {
        return Err(TransitionError::Forbidden(
            "only attach and detach are decided here".into(),
        ));
    }
    state_machine::decide(&machine_facts(current, false), &caller.actor(), command).map(|_| ())
}

/// Decides `command` by `caller` on `current`. Refusals come in the order clients rely on:
/// not visible (404), closed or not allowed in this state (409), not allowed to this caller
/// (403), then the command's fields (422).
pub fn decide(
    current: &Incident,
    caller: &Caller,
    command: IncidentCommand,
    lookups: &Lookups<'_>,
) -> Result<Outcome, TransitionError> {
    if let IncidentCommand::SlaEscalation {
        trigger,
        warning_percent,
    } = command
    {
        return Ok(apply::sla_escalation(
            current,
            trigger,
            warning_percent,
            lookups.now,
        ));
    }
    if !caller.sees(current) {
        return Err(TransitionError::NotFound {
            what: "incident",
            id: current.id,
        });
    }
    let machine_command = command.machine_command(current);
    let actor = caller.actor();
    let before = machine_facts(current, lookups.open_customer_issue);
    // The machine decides before the command's fields are looked at, so a closed incident or
    // an illegal action is reported as such, not as a field error. Resolving may classify the
    // incident in the same step, so a missing classification is judged afterwards.
    match state_machine::decide(&before, &actor, machine_command) {
        Ok(_) | Err(TransitionError::ClassificationRequired) => {}
        Err(refused) => return Err(refused),
    }
    let mut next = current.clone();
    let effect = apply::apply(command, current, &mut next, caller, lookups)?;
    let after = Facts {
        classified: next.classified(),
        ..before
    };
    next.status = state_machine::decide(&after, &actor, machine_command)?;
    Ok(outcome(current, next, machine_command.action(), effect))
}

fn outcome(current: &Incident, next: Incident, action: Action, effect: Effect) -> Outcome {
    let changes = diff(Some(current), &next);
    let knowledge_used = next
        .knowledge_entry_id
        .filter(|entry| Some(*entry) != current.knowledge_entry_id);
    let mut events = Vec::new();
    let mut cancel_tickets = None;
    if next.status != current.status {
        match next.status {
            Status::Resolved => events.push(IncidentEvent::Resolved),
            Status::Closed => {
                events.push(IncidentEvent::Closed);
                cancel_tickets = next
                    .closure_code
                    .map(|code| format!("incident {} closed as {code}", next.number));
            }
            _ => {}
        }
    }
    match action {
        Action::Assign => events.push(IncidentEvent::Assigned),
        Action::Accept => events.push(IncidentEvent::Accepted),
        Action::Confirm => events.push(IncidentEvent::Confirmed),
        Action::RejectResolution => events.push(IncidentEvent::ResolutionRejected),
        Action::Withdraw => events.push(IncidentEvent::Withdrawn),
        Action::AddNote => events.push(IncidentEvent::NoteCreated),
        _ => {}
    }
    // Changed fields no other event of this decision announces.
    if events.is_empty() && effect.escalation.is_none() && !changes.is_empty() {
        events.push(IncidentEvent::Updated);
    }
    if let Some(escalation) = &effect.escalation {
        events.push(IncidentEvent::EscalationCreated);
        match escalation.trigger {
            Some(EscalationTrigger::Sla(SlaTrigger::SlaWarning)) => {
                events.push(IncidentEvent::SlaWarning)
            }
            Some(EscalationTrigger::Sla(SlaTrigger::SlaBreach)) => {
                events.push(IncidentEvent::SlaBreached)
            }
            _ => {}
        }
    }
    let worth_recording = !changes.is_empty()
        || effect.note.is_some()
        || effect.comment.is_some()
        || effect.escalation.is_some();
    let visibility = history_visibility(
        action,
        &changes,
        effect.note.as_ref().map(|note| note.visibility),
        effect.escalation.as_ref().map(|e| e.kind),
    );
    let history = worth_recording.then(|| HistoryEntry {
        action: action.as_str(),
        changes,
        comment: effect.comment,
        internal: visibility == NoteVisibility::Internal,
    });
    Outcome {
        incident: next,
        history,
        note: effect.note,
        escalation: effect.escalation,
        events,
        cancel_tickets,
        knowledge_used,
    }
}

/// Who may read the history entry of `action` (SPEC §4.3): customers read what happened to
/// their report (accepted, level changed, worked around, resolved, confirmed or rejected,
/// withdrawn, closed, reported again, public notes) and nothing of the desk's internal work
/// (escalations and their diagnosis, assignments, SLA warnings, coordination, internal notes,
/// edits other than of the reporter's own details, event acknowledgements).
pub fn history_visibility(
    action: Action,
    changes: &[FieldChange],
    note: Option<NoteVisibility>,
    escalation: Option<EscalationKind>,
) -> NoteVisibility {
    use Action::*;
    let public = match action {
        Accept | Workaround | Resolve | Confirm | RejectResolution | Withdraw | Close
        | EventTriggered | ReportedAgain | AutoResolve => true,
        // Files are as public as notes: `note` is their visibility.
        AddNote | Attach | Detach => note == Some(NoteVisibility::Public),
        // A level change is news to the reporter; the other escalations are the desk's.
        Escalate => escalation == Some(EscalationKind::Priority),
        Edit => !changes.is_empty() && changes.iter().all(|c| c.field == "reporter"),
        Assign | CoordinationResolved | EventAcknowledged | EventResolved => false,
    };
    if public {
        NoteVisibility::Public
    } else {
        NoteVisibility::Internal
    }
}

/// A public history entry as a customer user reads it (SPEC §4.3): what the entry says about
/// the desk's internal work is left out — who was assigned, the reason of a level change, the
/// desk's closing note (a duplicate's entry names the surviving incident instead).
pub fn customer_view(
    action: &str,
    changes: Vec<FieldChange>,
    comment: Option<String>,
) -> (Vec<FieldChange>, Option<String>) {
    let keep = |changes: Vec<FieldChange>, fields: &[&str]| -> Vec<FieldChange> {
        changes
            .into_iter()
            .filter(|c| fields.contains(&c.field.as_str()))
            .collect()
    };
    match action {
        "accept" => (
            changes
                .into_iter()
                .filter(|c| c.field != "assignee_id")
                .collect(),
            comment,
        ),
        "escalate" => (keep(changes, &["level", "due_at"]), None),
        "close" => {
            let survivor = changes
                .iter()
                .find(|c| c.field == "duplicate_of")
                .and_then(|c| c.new.as_i64())
                .map(|id| format!("duplicate of {}", Incident::number_for(id)));
            (
                keep(
                    changes,
                    &["status", "closure_code", "closed_at", "duplicate_of"],
                ),
                survivor,
            )
        }
        _ => (changes, comment),
    }
}

/// Fields that are bookkeeping, not part of what changed.
const UNTRACKED: [&str; 6] = [
    "id",
    "number",
    "created_at",
    "created_by",
    "updated_at",
    "version",
];

/// The fields that differ between `old` (none at creation) and `new`, by their JSON names.
pub fn diff(old: Option<&Incident>, new: &Incident) -> Vec<FieldChange> {
    super::changes::json_diff(old, new, &UNTRACKED)
}

/// The actions `caller` may take on `incident` now, by their names (`allowed_actions`).
/// Resolving is offered to an unclassified incident too, since the same request can classify it.
pub fn allowed_actions(
    incident: &Incident,
    caller: &Caller,
    open_customer_issue: bool,
) -> Vec<&'static str> {
    const CANDIDATES: &[&[Command]] = &[
        &[Command::Accept],
        &[Command::Workaround],
        &[Command::Resolve],
        &[Command::Confirm],
        &[Command::RejectResolution],
        &[Command::Assign],
        &[Command::Withdraw],
        &[
            Command::Close(ClosureCode::Resolved),
            Command::Close(ClosureCode::Unresolved),
            Command::Close(ClosureCode::Duplicate),
            Command::Close(ClosureCode::Withdrawn),
        ],
        &[Command::Edit],
        &[Command::AddNote(NoteVisibility::Public)],
        &[
            Command::Escalate(Escalation::Hierarchical),
            Command::Escalate(Escalation::Functional),
            Command::Escalate(Escalation::RaiseLevel),
        ],
    ];
    if incident.status == Status::Closed || !caller.sees(incident) {
        return vec![];
    }
    let facts = machine_facts(incident, open_customer_issue);
    let actor = caller.actor();
    CANDIDATES
        .iter()
        .filter(|commands| {
            commands.iter().any(|command| {
                matches!(
                    state_machine::decide(&facts, &actor, *command),
                    Ok(_) | Err(TransitionError::ClassificationRequired)
                )
            })
        })
        .map(|commands| commands[0].action().as_str())
        .collect()
}
