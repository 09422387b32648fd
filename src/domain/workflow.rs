//! One decision per incident write.
//!
//! [`decide`] takes the incident, the caller, the command with its payload and the facts the
//! store looked up beforehand ([`Lookups`]), and returns either a refusal or the whole
//! [`Outcome`]: the incident's new fields, the history entry, the note, the escalation record
//! and the webhook events. [`new_incident`] does the same for creation. The store only loads the
//! facts a command [`needs`](IncidentCommand::needs), locks the row, calls one of them and
//! writes what they return; nothing here touches HTTP or the database.

use chrono::{DateTime, Utc};

use super::changes::{Changes, FieldChange};
use super::escalation::{
    EscalationKind, EscalationRecord, EscalationTrigger, PriorityTrigger, SlaTrigger,
};
use super::incident::{
    Channel, ClosureCode, Incident, IncidentKind, NoteVisibility, Reporter, Status, Tier,
};
use super::level::Level;
use super::role::{Role, Roles};
use super::sla::{self, Deadlines, UploadCutoff};
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
            .is_none_or(|own| own == incident.customer_id)
    }

    fn actor(&self) -> Actor<'_> {
        Actor {
            roles: &self.roles,
            customer_id: self.customer_id,
        }
    }
}

/// Changes to an incident's descriptive fields: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct IncidentEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub reporter: Option<Option<Reporter>>,
    pub source_system: Option<Option<String>>,
    pub ci_id: Option<Option<i64>>,
    pub kind: Option<IncidentKind>,
    pub channel: Option<Channel>,
    pub category: Option<Option<String>>,
    pub subcategory: Option<Option<String>>,
    pub affects_onsite_work: Option<bool>,
    pub affects_data_upload: Option<bool>,
}

/// A solution with its cause, and optionally the classification made in the same step.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Resolution {
    pub solution: String,
    pub cause: String,
    pub subcause: String,
    pub category: Option<String>,
    pub subcategory: Option<String>,
}

/// An escalation a person asks for (SPEC §5).
#[derive(Debug, Clone, PartialEq)]
pub enum EscalationRequest {
    /// L1 → L2 with the first line's diagnosis.
    Functional {
        /// An active L2 engineer.
        assignee_id: i64,
        /// What L1 found and tried.
        diagnosis: String,
    },
    /// A level change.
    Priority {
        /// The new level.
        level: Level,
        /// Why.
        reason: String,
        /// Default `manual`.
        trigger: Option<PriorityTrigger>,
    },
    /// To the incident managers.
    Hierarchical {
        /// Why.
        reason: String,
    },
}

/// Everything that can be done to an existing incident.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentCommand {
    /// Change descriptive fields (PATCH).
    Edit(IncidentEdit),
    /// Take into work; the caller unless another assignee is named.
    Accept {
        /// Another engineer to work it.
        assignee_id: Option<i64>,
    },
    /// Record a temporary measure.
    Workaround {
        /// What was done.
        description: String,
    },
    /// Record the solution and cause.
    Resolve(Resolution),
    /// The reporter confirms the resolution.
    Confirm {
        /// How the service desk obtained it.
        channel: Option<Channel>,
    },
    /// The reporter rejects the resolution.
    RejectResolution {
        /// Why.
        reason: String,
    },
    /// Close with a closure code.
    Close {
        /// Why it is closed.
        closure_code: ClosureCode,
        /// The incident a duplicate duplicates.
        duplicate_of: Option<i64>,
        /// Why; required for `withdrawn`.
        note: Option<String>,
    },
    /// Add a note.
    AddNote {
        /// Who may read it.
        visibility: NoteVisibility,
        /// Its text.
        body: String,
    },
    /// Escalate.
    Escalate(EscalationRequest),
    /// The SLA watcher's escalation once a threshold has passed (for the incident managers).
    SlaEscalation {
        /// Which threshold.
        trigger: SlaTrigger,
        /// The warning threshold in percent of the time to the deadline.
        warning_percent: u32,
    },
}

/// What the store must look up before [`decide`] can run a command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// A user the command names (an assignee).
    pub user: Option<i64>,
    /// Another incident the command names (the original of a duplicate).
    pub incident: Option<i64>,
    /// A configuration item the command names.
    pub ci: Option<i64>,
    /// The deadlines in force (targets and calendar), for level changes.
    pub deadlines: bool,
}

impl IncidentCommand {
    /// The facts this command needs looked up.
    pub fn needs(&self) -> Needs {
        match self {
            IncidentCommand::Accept { assignee_id } => Needs {
                user: *assignee_id,
                ..Needs::default()
            },
            IncidentCommand::Escalate(EscalationRequest::Functional { assignee_id, .. }) => Needs {
                user: Some(*assignee_id),
                ..Needs::default()
            },
            IncidentCommand::Escalate(EscalationRequest::Priority { .. }) => Needs {
                deadlines: true,
                ..Needs::default()
            },
            IncidentCommand::Close {
                closure_code: ClosureCode::Duplicate,
                duplicate_of,
                ..
            } => Needs {
                incident: *duplicate_of,
                ..Needs::default()
            },
            IncidentCommand::Edit(edit) => Needs {
                ci: edit.ci_id.flatten(),
                deadlines: edit.affects_data_upload == Some(true)
                    || edit.affects_onsite_work == Some(true),
                ..Needs::default()
            },
            _ => Needs::default(),
        }
    }

    /// The state machine's command for this one on `incident`.
    fn machine_command(&self, incident: &Incident) -> Command {
        match self {
            IncidentCommand::Edit(_) => Command::Edit,
            IncidentCommand::Accept { .. } => Command::Accept,
            IncidentCommand::Workaround { .. } => Command::Workaround,
            IncidentCommand::Resolve(_) => Command::Resolve,
            IncidentCommand::Confirm { .. } => Command::Confirm,
            IncidentCommand::RejectResolution { .. } => Command::RejectResolution,
            IncidentCommand::Close { closure_code, .. } => Command::Close(*closure_code),
            IncidentCommand::AddNote { visibility, .. } => Command::AddNote(*visibility),
            IncidentCommand::Escalate(EscalationRequest::Functional { .. }) => {
                Command::Escalate(Escalation::Functional)
            }
            IncidentCommand::Escalate(EscalationRequest::Priority { level, .. })
                if *level < incident.level =>
            {
                Command::Escalate(Escalation::LowerLevel)
            }
            IncidentCommand::Escalate(EscalationRequest::Priority { .. }) => {
                Command::Escalate(Escalation::RaiseLevel)
            }
            IncidentCommand::Escalate(EscalationRequest::Hierarchical { .. })
            | IncidentCommand::SlaEscalation { .. } => Command::Escalate(Escalation::Hierarchical),
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
    pub customer_id: i64,
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
    /// A `customer_issue` coordination ticket of this incident is open or accepted.
    pub open_customer_issue: bool,
    /// The deadlines in force, when the command may change the level.
    pub deadlines: Option<Deadlines>,
    /// The daily upload cut-off, when configured.
    pub upload_cutoff: Option<UploadCutoff>,
}

/// A note to write with a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    /// Who may read it.
    pub visibility: NoteVisibility,
    /// Text.
    pub body: String,
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
    /// Hidden from customer users (it is about an internal note).
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

fn machine_facts(incident: &Incident, open_customer_issue: bool) -> Facts {
    Facts {
        status: incident.status,
        tier: incident.tier,
        customer_id: incident.customer_id,
        user_reported: incident.user_reported(),
        user_confirmed: incident.user_confirmed_at.is_some(),
        classified: incident.classified(),
        open_customer_issue,
    }
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
        return Ok(sla_escalation(
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
    let effect = apply(command, current, &mut next, caller, lookups)?;
    let after = Facts {
        classified: next.classified(),
        ..before
    };
    next.status = state_machine::decide(&after, &actor, machine_command)?;
    Ok(outcome(
        current,
        next,
        machine_command.action().as_str(),
        effect,
    ))
}

fn outcome(current: &Incident, next: Incident, action: &'static str, effect: Effect) -> Outcome {
    let changes = diff(Some(current), &next);
    let mut events = Vec::new();
    if next.status != current.status {
        match next.status {
            Status::Resolved => events.push(IncidentEvent::Resolved),
            Status::Closed => events.push(IncidentEvent::Closed),
            _ => {}
        }
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
    let history = worth_recording.then(|| HistoryEntry {
        action,
        changes: changes.into_vec(),
        comment: effect.comment,
        internal: effect
            .note
            .as_ref()
            .is_some_and(|note| note.visibility == NoteVisibility::Internal),
    });
    Outcome {
        incident: next,
        history,
        note: effect.note,
        escalation: effect.escalation,
        events,
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
pub fn diff(old: Option<&Incident>, new: &Incident) -> Changes {
    let as_map = |incident: &Incident| match serde_json::to_value(incident) {
        Ok(serde_json::Value::Object(map)) => map,
        // A struct of plain fields always serialises to an object.
        _ => serde_json::Map::new(),
    };
    let new_map = as_map(new);
    let old_map = old.map(as_map);
    let mut changes = Changes::new();
    for (field, new_value) in &new_map {
        if UNTRACKED.contains(&field.as_str()) {
            continue;
        }
        let old_value = old_map
            .as_ref()
            .and_then(|map| map.get(field).cloned())
            .unwrap_or(serde_json::Value::Null);
        changes.track(field, &old_value, new_value);
    }
    changes
}

/// Fills in the fields `command` sets, once the state machine has agreed.
fn apply(
    command: IncidentCommand,
    current: &Incident,
    next: &mut Incident,
    caller: &Caller,
    lookups: &Lookups<'_>,
) -> Result<Effect, TransitionError> {
    let now = lookups.now;
    match command {
        IncidentCommand::Edit(edit) => edit_fields(edit, current, next, caller, lookups),
        IncidentCommand::Accept { assignee_id } => {
            let assignee = match assignee_id {
                Some(id) => {
                    check_assignee(id, lookups.user.as_ref(), current.tier)?;
                    id
                }
                None => caller.id.ok_or_else(|| {
                    invalid("assignee_id", "required", "name the engineer to work it")
                })?,
            };
            next.assignee_id = Some(assignee);
            next.accepted_at = Some(now);
            Ok(Effect::default())
        }
        IncidentCommand::Workaround { description } => {
            next.workaround = Some(description);
            next.workaround_applied = true;
            Ok(Effect::default())
        }
        IncidentCommand::Resolve(resolution) => {
            resolve_fields(resolution, current, next, lookups.taxonomy)?;
            next.resolved_at = Some(now);
            next.user_confirmed_at = None;
            Ok(Effect::default())
        }
        IncidentCommand::Confirm { channel } => {
            next.user_confirmed_at = Some(now);
            Ok(Effect {
                comment: channel.map(|c| format!("confirmed by {c}")),
                ..Effect::default()
            })
        }
        IncidentCommand::RejectResolution { reason } => {
            next.resolved_at = None;
            next.user_confirmed_at = None;
            Ok(Effect {
                comment: Some(reason),
                ..Effect::default()
            })
        }
        IncidentCommand::Close {
            closure_code,
            duplicate_of,
            note,
        } => {
            let note = note.filter(|n| !n.trim().is_empty());
            match closure_code {
                ClosureCode::Duplicate => {
                    let Some(original) = duplicate_of else {
                        return Err(invalid(
                            "duplicate_of",
                            "required",
                            "a duplicate names the incident it duplicates",
                        ));
                    };
                    let same_customer = lookups.incident.is_some_and(|o| {
                        o.id == original
                            && o.id != current.id
                            && o.customer_id == current.customer_id
                    });
                    if !same_customer {
                        return Err(invalid(
                            "duplicate_of",
                            "invalid",
                            "must be another existing incident of the same customer",
                        ));
                    }
                    next.duplicate_of = Some(original);
                }
                ClosureCode::Withdrawn if note.is_none() => {
                    return Err(invalid(
                        "note",
                        "required",
                        "say why the incident is withdrawn",
                    ));
                }
                _ if duplicate_of.is_some() => {
                    return Err(invalid(
                        "duplicate_of",
                        "invalid",
                        "only a duplicate names another incident",
                    ));
                }
                _ => {}
            }
            next.closure_code = Some(closure_code);
            next.closed_at = Some(now);
            next.closed_by = caller.id;
            Ok(Effect {
                comment: note,
                ..Effect::default()
            })
        }
        IncidentCommand::AddNote { visibility, body } => Ok(Effect {
            note: Some(NewNote { visibility, body }),
            ..Effect::default()
        }),
        IncidentCommand::Escalate(request) => escalate(request, current, next, caller, lookups),
        // Handled before the state machine is asked.
        IncidentCommand::SlaEscalation { .. } => Ok(Effect::default()),
    }
}

fn check_assignee(id: i64, user: Option<&UserFacts>, tier: Tier) -> Result<(), TransitionError> {
    let worker = state_machine::tier_worker(tier);
    let Some(user) = user.filter(|u| u.id == id) else {
        return Err(invalid(
            "assignee_id",
            "not_found",
            format!("user {id} does not exist"),
        ));
    };
    if !user.active || !user.roles.has_any(&[worker, Role::IncidentManager]) {
        return Err(invalid(
            "assignee_id",
            "invalid",
            format!("the assignee must be an active {worker} or incident_manager"),
        ));
    }
    Ok(())
}

fn resolve_fields(
    resolution: Resolution,
    current: &Incident,
    next: &mut Incident,
    taxonomy: &Taxonomy,
) -> Result<(), TransitionError> {
    let one = |error: FieldError| TransitionError::Invalid(vec![error]);
    taxonomy
        .check_cause(&resolution.cause, &resolution.subcause)
        .map_err(one)?;
    if resolution.category.is_some() || resolution.subcategory.is_some() {
        let category = resolution
            .category
            .or_else(|| current.category.clone())
            .or_else(|| {
                resolution
                    .subcategory
                    .as_deref()
                    .and_then(|s| taxonomy.category_of(s))
            });
        let subcategory = resolution
            .subcategory
            .or_else(|| current.subcategory.clone());
        taxonomy
            .check_classification(category.as_deref(), subcategory.as_deref())
            .map_err(one)?;
        next.category = category;
        next.subcategory = subcategory;
    }
    next.solution = Some(resolution.solution);
    next.cause = Some(resolution.cause);
    next.subcause = Some(resolution.subcause);
    Ok(())
}

fn edit_fields(
    edit: IncidentEdit,
    current: &Incident,
    next: &mut Incident,
    caller: &Caller,
    lookups: &Lookups<'_>,
) -> Result<Effect, TransitionError> {
    let taxonomy = lookups.taxonomy;
    if let Some(title) = edit.title {
        next.title = title.trim().to_owned();
    }
    if let Some(description) = edit.description {
        next.description = description;
    }
    if let Some(reporter) = edit.reporter {
        next.reporter = reporter;
    }
    if let Some(system) = edit.source_system {
        next.source_system = system.map(|s| s.trim().to_owned());
    }
    if let Some(kind) = edit.kind {
        next.kind = kind;
    }
    if let Some(channel) = edit.channel {
        next.channel = channel;
    }
    if let Some(category) = edit.category {
        if category.is_none() {
            next.subcategory = None;
        }
        next.category = category;
    }
    if let Some(subcategory) = edit.subcategory {
        if next.category.is_none() {
            next.category = subcategory.as_deref().and_then(|s| taxonomy.category_of(s));
        }
        next.subcategory = subcategory;
    }
    taxonomy
        .check_classification(next.category.as_deref(), next.subcategory.as_deref())
        .map_err(|e| TransitionError::Invalid(vec![e]))?;
    if let Some(ci_id) = edit.ci_id {
        next.ci_id = ci_id;
        if let Some(id) = ci_id.filter(|_| next.ci_id != current.ci_id) {
            match lookups.ci.filter(|ci| ci.id == id) {
                Some(ci) if ci.customer_id == current.customer_id => {}
                Some(_) => {
                    return Err(invalid(
                        "ci_id",
                        "invalid",
                        "the configuration item belongs to another customer",
                    ));
                }
                None => {
                    return Err(invalid(
                        "ci_id",
                        "not_found",
                        format!("configuration item {id} does not exist"),
                    ));
                }
            }
        }
    }
    if let Some(onsite) = edit.affects_onsite_work {
        next.affects_onsite_work = onsite;
    }
    if let Some(upload) = edit.affects_data_upload {
        next.affects_data_upload = upload;
    }
    // Procedure §4.8.2: newly holding up the data upload or on-site work raises the level at
    // once, as a priority escalation, by the same rule as at creation.
    let upload_now = next.affects_data_upload && !current.affects_data_upload;
    let onsite_now = next.affects_onsite_work && !current.affects_onsite_work;
    let raised = sla::level_for_impact(current.level, upload_now, onsite_now);
    if raised <= current.level {
        return Ok(Effect::default());
    }
    let (trigger, reason) = if upload_now {
        (
            PriorityTrigger::DataUpload,
            "the incident holds up the data upload",
        )
    } else {
        (
            PriorityTrigger::OnsiteUrgent,
            "the incident holds up on-site work",
        )
    };
    change_level(current, next, raised, lookups)?;
    let escalation = EscalationRecord::between(
        current,
        next,
        EscalationKind::Priority,
        Some(EscalationTrigger::Priority(trigger)),
        reason.to_owned(),
        caller.id,
        lookups.now,
    );
    Ok(Effect {
        escalation: Some(escalation),
        ..Effect::default()
    })
}

/// Moves `next` to `level` with the deadline of SPEC §4.1.
fn change_level(
    current: &Incident,
    next: &mut Incident,
    level: Level,
    lookups: &Lookups<'_>,
) -> Result<(), TransitionError> {
    let Some(deadlines) = &lookups.deadlines else {
        // The store loads deadlines for every command that can change the level.
        return Err(invalid(
            "level",
            "unavailable",
            "the deadlines in force were not looked up",
        ));
    };
    next.due_at = sla::due_after_level_change(
        current.due_at,
        current.created_at,
        current.level,
        level,
        lookups.now,
        deadlines,
        next.affects_data_upload,
        lookups.upload_cutoff,
    );
    next.level = level;
    Ok(())
}

fn escalate(
    request: EscalationRequest,
    current: &Incident,
    next: &mut Incident,
    caller: &Caller,
    lookups: &Lookups<'_>,
) -> Result<Effect, TransitionError> {
    let now = lookups.now;
    let escalation = match request {
        EscalationRequest::Functional {
            assignee_id,
            diagnosis,
        } => {
            let l2 = lookups
                .user
                .as_ref()
                .is_some_and(|u| u.id == assignee_id && u.active && u.roles.has(Role::L2Engineer));
            if !l2 {
                return Err(invalid(
                    "assignee_id",
                    "invalid",
                    "the assignee must be an active l2_engineer",
                ));
            }
            next.tier = Tier::L2;
            next.assignee_id = Some(assignee_id);
            next.accepted_at = current.accepted_at.or(Some(now));
            EscalationRecord::between(
                current,
                next,
                EscalationKind::Functional,
                None,
                diagnosis,
                caller.id,
                now,
            )
        }
        EscalationRequest::Priority {
            level,
            reason,
            trigger,
        } => {
            if level == current.level {
                return Err(invalid(
                    "level",
                    "unchanged",
                    format!("the incident is already {level}"),
                ));
            }
            change_level(current, next, level, lookups)?;
            let trigger = trigger.unwrap_or(PriorityTrigger::Manual);
            EscalationRecord::between(
                current,
                next,
                EscalationKind::Priority,
                Some(EscalationTrigger::Priority(trigger)),
                reason,
                caller.id,
                now,
            )
        }
        EscalationRequest::Hierarchical { reason } => EscalationRecord::between(
            current,
            next,
            EscalationKind::Hierarchical,
            None,
            reason,
            caller.id,
            now,
        ),
    };
    Ok(Effect {
        comment: escalation.reason.clone(),
        escalation: Some(escalation),
        note: None,
    })
}

/// The watcher's decision: a hierarchical escalation when the state machine allows one for the
/// incident managers and the threshold has passed on the current deadline, else nothing.
fn sla_escalation(
    current: &Incident,
    trigger: SlaTrigger,
    warning_percent: u32,
    now: DateTime<Utc>,
) -> Outcome {
    let managers = Roles::new([Role::IncidentManager]);
    let actor = Actor {
        roles: &managers,
        customer_id: None,
    };
    let command = Command::Escalate(Escalation::Hierarchical);
    if state_machine::decide(&machine_facts(current, false), &actor, command).is_err() {
        return Outcome::nothing(current);
    }
    let span = current.due_at - current.created_at;
    let warning_at = current.created_at + span * warning_percent as i32 / 100;
    let (passed, reason) = match trigger {
        SlaTrigger::SlaWarning => (
            now >= warning_at,
            format!("{warning_percent}% of the time to the deadline has passed"),
        ),
        SlaTrigger::SlaBreach => (
            now >= current.due_at,
            "the resolution deadline has passed".to_owned(),
        ),
    };
    if !passed {
        return Outcome::nothing(current);
    }
    let mut escalation = EscalationRecord::between(
        current,
        current,
        EscalationKind::Hierarchical,
        Some(EscalationTrigger::Sla(trigger)),
        reason.clone(),
        None,
        now,
    );
    escalation.due_at = Some(current.due_at);
    outcome(
        current,
        current.clone(),
        Action::Escalate.as_str(),
        Effect {
            comment: Some(reason),
            escalation: Some(escalation),
            note: None,
        },
    )
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

/// A new incident as reported, before the rules fill in defaults, level and deadline.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct IncidentDraft {
    pub kind: Option<IncidentKind>,
    pub channel: Option<Channel>,
    pub title: String,
    pub description: Option<String>,
    pub customer_id: Option<i64>,
    pub reporter: Option<Reporter>,
    pub source_system: Option<String>,
    pub ci_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub level: Option<Level>,
    pub affects_onsite_work: Option<bool>,
    pub affects_data_upload: Option<bool>,
    pub recurrence_of: Option<i64>,
}

/// The organisation a new incident belongs to: a customer user's own (and only that), else the
/// one named.
pub fn customer_of_new(caller: &Caller, asked: Option<i64>) -> Result<i64, TransitionError> {
    match (caller.confined_to_customer(), asked) {
        (Some(own), Some(asked)) if asked != own => Err(TransitionError::Forbidden(
            "A customer user reports incidents for its own organisation only.".into(),
        )),
        (Some(own), _) => Ok(own),
        (None, Some(asked)) => Ok(asked),
        (None, None) => Err(invalid("customer_id", "required", "is required")),
    }
}

/// A customer organisation named at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerFacts {
    /// Id.
    pub id: i64,
    /// Still served.
    pub active: bool,
}

/// The facts looked up before creating an incident.
#[derive(Debug, Clone)]
pub struct CreationLookups<'a> {
    /// Creation time.
    pub now: DateTime<Utc>,
    /// The classification codes.
    pub taxonomy: &'a Taxonomy,
    /// The organisation, when it exists.
    pub customer: Option<CustomerFacts>,
    /// The configuration item named, when it exists.
    pub ci: Option<CiRef>,
    /// The incident this one recurs, when it exists.
    pub recurrence: Option<IncidentRef>,
    /// The deadlines in force.
    pub deadlines: Deadlines,
    /// The daily upload cut-off, when configured.
    pub upload_cutoff: Option<UploadCutoff>,
}

/// An incident ready to be stored; the store adds id, number and version.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct NewIncident {
    pub kind: IncidentKind,
    pub channel: Channel,
    pub title: String,
    pub description: String,
    pub customer_id: i64,
    pub reporter: Option<Reporter>,
    pub source_system: Option<String>,
    pub ci_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub level: Level,
    pub affects_onsite_work: bool,
    pub affects_data_upload: bool,
    pub status: Status,
    pub tier: Tier,
    pub due_at: DateTime<Utc>,
    pub recurrence_of: Option<i64>,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
}

/// Decides a new incident (SPEC §4, §4.1): its organisation, reporter, channel, classification,
/// level and deadline. Field errors come in the order of the request's checks: who may report
/// for whom, the level, the classification, then what had to be looked up.
pub fn new_incident(
    caller: &Caller,
    draft: IncidentDraft,
    lookups: &CreationLookups<'_>,
) -> Result<NewIncident, TransitionError> {
    let customer_id = customer_of_new(caller, draft.customer_id)?;
    let created_by = caller.id.ok_or_else(|| {
        TransitionError::Forbidden("Incidents are reported by users and integrations.".into())
    })?;
    let is_customer = caller.roles.has(Role::Customer);
    if is_customer && draft.level.is_some() {
        return Err(invalid(
            "level",
            "forbidden",
            "the service desk sets the level",
        ));
    }
    let reporter = match draft.reporter {
        Some(reporter) => Some(reporter),
        None if is_customer => Some(Reporter {
            name: caller.name.clone(),
            phone: None,
            email: None,
        }),
        None => None,
    };
    let channel = draft.channel.unwrap_or(if is_customer {
        Channel::Web
    } else if caller.roles.has(Role::Integration) && !caller.roles.is_staff() {
        Channel::Monitoring
    } else {
        Channel::Phone
    });
    let taxonomy = lookups.taxonomy;
    let subcategory = draft.subcategory;
    let category = draft
        .category
        .or_else(|| subcategory.as_deref().and_then(|s| taxonomy.category_of(s)));
    if category.is_none() && subcategory.is_some() {
        return Err(invalid(
            "subcategory",
            "unknown",
            "not a subcategory; see GET /api/v1/taxonomy",
        ));
    }
    taxonomy
        .check_classification(category.as_deref(), subcategory.as_deref())
        .map_err(|e| TransitionError::Invalid(vec![e]))?;
    match lookups.customer.filter(|c| c.id == customer_id) {
        None => {
            return Err(invalid(
                "customer_id",
                "not_found",
                format!("customer {customer_id} does not exist"),
            ));
        }
        Some(customer) if !customer.active => {
            return Err(invalid(
                "customer_id",
                "inactive",
                "the customer organisation is no longer served",
            ));
        }
        Some(_) => {}
    }
    if let Some(ci_id) = draft.ci_id {
        match lookups.ci.filter(|ci| ci.id == ci_id) {
            Some(ci) if ci.customer_id == customer_id => {}
            Some(_) => {
                return Err(invalid(
                    "ci_id",
                    "invalid",
                    "the configuration item belongs to another customer",
                ));
            }
            None => {
                return Err(invalid(
                    "ci_id",
                    "not_found",
                    format!("configuration item {ci_id} does not exist"),
                ));
            }
        }
    }
    if let Some(previous) = draft.recurrence_of {
        let found = lookups
            .recurrence
            .filter(|p| p.id == previous && p.customer_id == customer_id);
        match found {
            Some(p) if p.status == Status::Closed => {}
            Some(_) => {
                return Err(invalid(
                    "recurrence_of",
                    "not_closed",
                    "a recurrence refers to a closed incident; the open one can still be worked",
                ));
            }
            None => {
                return Err(invalid(
                    "recurrence_of",
                    "not_found",
                    format!("incident {previous} does not exist"),
                ));
            }
        }
    }
    let subcategory_default = match (&category, &subcategory) {
        (Some(c), Some(s)) => taxonomy.subcategory(c, s).map(|s| s.default_level),
        _ => None,
    };
    let affects_data_upload = draft.affects_data_upload.unwrap_or(false);
    let affects_onsite_work = draft.affects_onsite_work.unwrap_or(false);
    let level = sla::initial_level(
        draft.level,
        subcategory_default,
        affects_data_upload,
        affects_onsite_work,
    );
    let now = lookups.now;
    Ok(NewIncident {
        kind: draft.kind.unwrap_or(IncidentKind::Fault),
        channel,
        title: draft.title.trim().to_owned(),
        description: draft.description.unwrap_or_default(),
        customer_id,
        reporter,
        source_system: draft.source_system.map(|s| s.trim().to_owned()),
        ci_id: draft.ci_id,
        category,
        subcategory,
        level,
        affects_onsite_work,
        affects_data_upload,
        status: Status::New,
        tier: Tier::L1,
        due_at: sla::initial_due_at(
            now,
            level,
            &lookups.deadlines,
            affects_data_upload,
            lookups.upload_cutoff,
        ),
        recurrence_of: draft.recurrence_of,
        created_by,
        created_at: now,
    })
}

/// The `created` history entry and events of a newly stored incident.
pub fn created(incident: &Incident) -> (HistoryEntry, Vec<IncidentEvent>) {
    (
        HistoryEntry {
            action: "created",
            changes: diff(None, incident).into_vec(),
            comment: None,
            internal: false,
        },
        vec![IncidentEvent::Created],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sla::SlaTargets;
    use crate::domain::taxonomy::{Category, Cause, Subcategory, Subcause};
    use chrono::Duration;

    const CUSTOMER: i64 = 7;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T01:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn taxonomy() -> Taxonomy {
        let sub = |code: &str, level| Subcategory {
            code: code.into(),
            name_zh: code.into(),
            name_en: code.into(),
            default_level: level,
        };
        Taxonomy {
            categories: vec![Category {
                code: "usage_issue".into(),
                name_zh: "使用时出现问题".into(),
                name_en: "Usage".into(),
                subcategories: vec![
                    sub("module_input_blocked", Level::High),
                    sub("query_inaccurate", Level::Medium),
                ],
            }],
            causes: vec![Cause {
                code: "unknown".into(),
                name_zh: "不明原因".into(),
                name_en: "Unknown".into(),
                subcauses: vec![Subcause {
                    code: "unclear_direct_fix".into(),
                    name_zh: "原因不明确".into(),
                    name_en: "Unclear".into(),
                }],
            }],
        }
    }

    fn incident(status: Status) -> Incident {
        Incident {
            id: 1,
            number: "INC-000001".into(),
            kind: IncidentKind::Fault,
            channel: Channel::Phone,
            title: "收费模块无法录入".into(),
            description: String::new(),
            customer_id: CUSTOMER,
            reporter: Some(Reporter {
                name: "王医生".into(),
                phone: None,
                email: None,
            }),
            source_system: Some("HIS".into()),
            ci_id: None,
            category: None,
            subcategory: None,
            level: Level::Low,
            affects_onsite_work: false,
            affects_data_upload: false,
            status,
            tier: Tier::L1,
            assignee_id: None,
            workaround: None,
            workaround_applied: false,
            solution: None,
            cause: None,
            subcause: None,
            due_at: t0() + Duration::hours(8),
            accepted_at: None,
            resolved_at: None,
            user_confirmed_at: None,
            closed_at: None,
            closed_by: None,
            closure_code: None,
            duplicate_of: None,
            recurrence_of: None,
            occurrences: 1,
            last_occurrence_at: None,
            dedup_key: None,
            change_ref: None,
            created_by: 2,
            created_at: t0(),
            updated_at: t0(),
            version: 1,
        }
    }

    fn caller(id: i64, roles: &[Role], customer_id: Option<i64>) -> Caller {
        Caller {
            id: Some(id),
            name: format!("user {id}"),
            roles: Roles::new(roles.iter().copied()),
            customer_id,
        }
    }

    fn desk() -> Caller {
        caller(10, &[Role::ServiceDesk], None)
    }

    fn lookups(taxonomy: &Taxonomy, now: DateTime<Utc>) -> Lookups<'_> {
        Lookups {
            now,
            taxonomy,
            user: None,
            incident: None,
            ci: None,
            open_customer_issue: false,
            deadlines: Some(Deadlines::wall_clock(SlaTargets::procedure_defaults())),
            upload_cutoff: None,
        }
    }

    fn close(code: ClosureCode, duplicate_of: Option<i64>, note: Option<&str>) -> IncidentCommand {
        IncidentCommand::Close {
            closure_code: code,
            duplicate_of,
            note: note.map(str::to_owned),
        }
    }

    fn field_of(error: TransitionError) -> String {
        match error {
            TransitionError::Invalid(errors) => errors[0].field.clone(),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn another_organisations_incident_does_not_exist_for_a_customer_user() {
        let tax = taxonomy();
        let stranger = caller(20, &[Role::Customer], Some(CUSTOMER + 1));
        let note = IncidentCommand::AddNote {
            visibility: NoteVisibility::Public,
            body: "还是不行".into(),
        };
        // Even a closed incident answers "not found", never "closed".
        for status in [Status::New, Status::Closed] {
            let err = decide(
                &incident(status),
                &stranger,
                note.clone(),
                &lookups(&tax, t0()),
            );
            assert_eq!(
                err,
                Err(TransitionError::NotFound {
                    what: "incident",
                    id: 1
                })
            );
        }
    }

    #[test]
    fn state_refusals_come_before_field_errors() {
        let tax = taxonomy();
        // Withdrawn without a note is a field error, but a closed incident says so first.
        let err = decide(
            &incident(Status::Closed),
            &desk(),
            close(ClosureCode::Withdrawn, None, None),
            &lookups(&tax, t0()),
        );
        assert_eq!(err, Err(TransitionError::IncidentClosed));
        let err = decide(
            &incident(Status::New),
            &desk(),
            close(ClosureCode::Withdrawn, None, None),
            &lookups(&tax, t0()),
        )
        .unwrap_err();
        assert_eq!(field_of(err), "note");
    }

    #[test]
    fn a_duplicate_names_another_existing_incident_of_the_same_customer() {
        let tax = taxonomy();
        let current = incident(Status::New);
        let attempt = |target: Option<IncidentRef>, duplicate_of: Option<i64>| {
            let mut facts = lookups(&tax, t0());
            facts.incident = target;
            decide(
                &current,
                &desk(),
                close(ClosureCode::Duplicate, duplicate_of, None),
                &facts,
            )
        };
        let same = |id, customer_id| IncidentRef {
            id,
            customer_id,
            status: Status::InProgress,
        };
        assert_eq!(field_of(attempt(None, None).unwrap_err()), "duplicate_of");
        assert_eq!(
            field_of(attempt(None, Some(5)).unwrap_err()),
            "duplicate_of"
        );
        let other_customer = attempt(Some(same(5, CUSTOMER + 1)), Some(5)).unwrap_err();
        assert_eq!(field_of(other_customer), "duplicate_of");
        let itself = attempt(Some(same(1, CUSTOMER)), Some(1)).unwrap_err();
        assert_eq!(field_of(itself), "duplicate_of");

        let outcome = attempt(Some(same(5, CUSTOMER)), Some(5)).unwrap();
        assert_eq!(outcome.incident.status, Status::Closed);
        assert_eq!(outcome.incident.duplicate_of, Some(5));
        assert_eq!(outcome.incident.closure_code, Some(ClosureCode::Duplicate));
        assert_eq!(outcome.incident.closed_by, Some(10));
        assert_eq!(outcome.events, vec![IncidentEvent::Closed]);
        let history = outcome.history.unwrap();
        assert_eq!(history.action, "close");
        assert!(history.changes.iter().any(|c| c.field == "status"
            && c.old == serde_json::json!("new")
            && c.new == serde_json::json!("closed")));
    }

    #[test]
    fn only_a_duplicate_names_another_incident() {
        let tax = taxonomy();
        let err = decide(
            &incident(Status::New),
            &desk(),
            close(ClosureCode::Withdrawn, Some(5), Some("用户撤回")),
            &lookups(&tax, t0()),
        )
        .unwrap_err();
        assert_eq!(field_of(err), "duplicate_of");
    }

    #[test]
    fn holding_up_the_upload_raises_to_high_as_a_priority_escalation() {
        let tax = taxonomy();
        let now = t0() + Duration::hours(1);
        let edit = IncidentCommand::Edit(IncidentEdit {
            affects_data_upload: Some(true),
            ..IncidentEdit::default()
        });
        assert!(edit.needs().deadlines);
        let outcome = decide(&incident(Status::New), &desk(), edit, &lookups(&tax, now)).unwrap();
        assert_eq!(outcome.incident.level, Level::High);
        // Raising never extends the deadline: min(old, now + 2 h).
        assert_eq!(outcome.incident.due_at, now + Duration::hours(2));
        let escalation = outcome.escalation.unwrap();
        assert_eq!(escalation.kind, EscalationKind::Priority);
        assert_eq!(
            escalation.trigger,
            Some(EscalationTrigger::Priority(PriorityTrigger::DataUpload))
        );
        assert_eq!(
            (escalation.from_level, escalation.to_level),
            (Level::Low, Level::High)
        );
        assert_eq!(escalation.created_by, Some(10));
        assert_eq!(outcome.events, vec![IncidentEvent::EscalationCreated]);
    }

    #[test]
    fn holding_up_onsite_work_lifts_only_a_low_incident() {
        let tax = taxonomy();
        let edit = IncidentCommand::Edit(IncidentEdit {
            affects_onsite_work: Some(true),
            ..IncidentEdit::default()
        });
        let low = decide(
            &incident(Status::New),
            &desk(),
            edit.clone(),
            &lookups(&tax, t0()),
        );
        let low = low.unwrap();
        assert_eq!(low.incident.level, Level::Medium);
        assert_eq!(
            low.escalation.unwrap().trigger,
            Some(EscalationTrigger::Priority(PriorityTrigger::OnsiteUrgent))
        );
        let mut medium = incident(Status::New);
        medium.level = Level::Medium;
        let outcome = decide(&medium, &desk(), edit, &lookups(&tax, t0())).unwrap();
        assert_eq!(outcome.incident.level, Level::Medium);
        assert!(outcome.escalation.is_none());
        assert!(outcome.incident.affects_onsite_work);
    }

    #[test]
    fn an_accepted_assignee_must_work_the_incidents_tier() {
        let tax = taxonomy();
        let accept = IncidentCommand::Accept {
            assignee_id: Some(30),
        };
        assert_eq!(accept.needs().user, Some(30));
        let with_user = |user: Option<UserFacts>| {
            let mut facts = lookups(&tax, t0());
            facts.user = user;
            decide(&incident(Status::New), &desk(), accept.clone(), &facts)
        };
        let engineer = |active| UserFacts {
            id: 30,
            active,
            roles: Roles::new([Role::L2Engineer]),
        };
        let missing = with_user(None).unwrap_err();
        assert!(matches!(&missing, TransitionError::Invalid(e) if e[0].code == "not_found"));
        // Tier l1 is worked by the service desk, not by L2 engineers.
        let wrong_tier = with_user(Some(engineer(true))).unwrap_err();
        assert!(matches!(&wrong_tier, TransitionError::Invalid(e) if e[0].code == "invalid"));
        let desk_user = UserFacts {
            id: 30,
            active: true,
            roles: Roles::new([Role::ServiceDesk]),
        };
        let outcome = with_user(Some(desk_user)).unwrap();
        assert_eq!(outcome.incident.assignee_id, Some(30));
        assert_eq!(outcome.incident.status, Status::InProgress);
        assert_eq!(outcome.incident.accepted_at, Some(t0()));
    }

    #[test]
    fn resolving_can_classify_in_the_same_step_and_is_blocked_by_an_open_customer_issue() {
        let tax = taxonomy();
        let mut working = incident(Status::InProgress);
        working.assignee_id = Some(10);
        let resolve = |category: Option<&str>, subcategory: Option<&str>| {
            IncidentCommand::Resolve(Resolution {
                solution: "重启服务".into(),
                cause: "unknown".into(),
                subcause: "unclear_direct_fix".into(),
                category: category.map(str::to_owned),
                subcategory: subcategory.map(str::to_owned),
            })
        };
        let unclassified = decide(&working, &desk(), resolve(None, None), &lookups(&tax, t0()));
        assert_eq!(unclassified, Err(TransitionError::ClassificationRequired));
        let outcome = decide(
            &working,
            &desk(),
            resolve(None, Some("query_inaccurate")),
            &lookups(&tax, t0()),
        )
        .unwrap();
        assert_eq!(outcome.incident.category.as_deref(), Some("usage_issue"));
        assert_eq!(outcome.incident.status, Status::Resolved);
        assert_eq!(outcome.events, vec![IncidentEvent::Resolved]);
        let mut blocked = lookups(&tax, t0());
        blocked.open_customer_issue = true;
        let err = decide(
            &working,
            &desk(),
            resolve(Some("usage_issue"), Some("query_inaccurate")),
            &blocked,
        );
        assert_eq!(err, Err(TransitionError::OpenCoordinationTicket));
    }

    #[test]
    fn the_sla_watcher_escalates_once_a_threshold_has_passed_and_skips_resolved_incidents() {
        let tax = taxonomy();
        let watcher = Caller {
            id: None,
            name: "SLA watcher".into(),
            roles: Roles::new([Role::IncidentManager]),
            customer_id: None,
        };
        let warn = IncidentCommand::SlaEscalation {
            trigger: SlaTrigger::SlaWarning,
            warning_percent: 75,
        };
        let open = incident(Status::New);
        // 75 % of 8 h is 6 h.
        let early = decide(
            &open,
            &watcher,
            warn.clone(),
            &lookups(&tax, t0() + Duration::hours(5)),
        );
        assert_eq!(early.unwrap(), Outcome::nothing(&open));
        let due = decide(
            &open,
            &watcher,
            warn.clone(),
            &lookups(&tax, t0() + Duration::hours(6)),
        );
        let due = due.unwrap();
        let escalation = due.escalation.unwrap();
        assert_eq!(escalation.due_at, Some(open.due_at));
        assert_eq!(escalation.created_by, None);
        assert_eq!(
            due.events,
            vec![IncidentEvent::EscalationCreated, IncidentEvent::SlaWarning]
        );
        let resolved = incident(Status::Resolved);
        let late = decide(
            &resolved,
            &watcher,
            warn,
            &lookups(&tax, t0() + Duration::hours(9)),
        );
        assert_eq!(late.unwrap(), Outcome::nothing(&resolved));
    }

    #[test]
    fn allowed_actions_follow_the_state_and_the_caller() {
        let new = incident(Status::New);
        assert_eq!(
            allowed_actions(&new, &desk(), false),
            vec!["accept", "close", "edit", "note", "escalate"]
        );
        let own = caller(20, &[Role::Customer], Some(CUSTOMER));
        assert_eq!(allowed_actions(&new, &own, false), vec!["note"]);
        let stranger = caller(21, &[Role::Customer], Some(CUSTOMER + 1));
        assert!(allowed_actions(&new, &stranger, false).is_empty());
        let mut resolved = incident(Status::Resolved);
        resolved.resolved_at = Some(t0());
        // Unconfirmed and user-reported: the reporter confirms before the desk may close.
        assert_eq!(
            allowed_actions(&resolved, &own, false),
            vec!["confirm", "reject-resolution", "note"]
        );
        assert!(!allowed_actions(&resolved, &desk(), false).contains(&"close"));
        assert!(allowed_actions(&incident(Status::Closed), &desk(), false).is_empty());
    }

    fn creation(taxonomy: &Taxonomy) -> CreationLookups<'_> {
        CreationLookups {
            now: t0(),
            taxonomy,
            customer: Some(CustomerFacts {
                id: CUSTOMER,
                active: true,
            }),
            ci: None,
            recurrence: None,
            deadlines: Deadlines::wall_clock(SlaTargets::procedure_defaults()),
            upload_cutoff: None,
        }
    }

    fn draft() -> IncidentDraft {
        IncidentDraft {
            title: "  收费模块无法录入 ".into(),
            customer_id: Some(CUSTOMER),
            subcategory: Some("module_input_blocked".into()),
            ..IncidentDraft::default()
        }
    }

    #[test]
    fn a_new_incident_takes_its_level_from_the_subcategory_and_its_category_from_it_too() {
        let tax = taxonomy();
        let new = new_incident(&desk(), draft(), &creation(&tax)).unwrap();
        assert_eq!(new.category.as_deref(), Some("usage_issue"));
        assert_eq!(new.level, Level::High);
        assert_eq!(new.due_at, t0() + Duration::hours(2));
        assert_eq!(new.title, "收费模块无法录入");
        assert_eq!(new.channel, Channel::Phone);
        assert_eq!(new.reporter, None);
        assert_eq!((new.status, new.tier), (Status::New, Tier::L1));
    }

    #[test]
    fn a_customer_user_reports_for_its_own_organisation_as_the_reporter_without_a_level() {
        let tax = taxonomy();
        let own = caller(20, &[Role::Customer], Some(CUSTOMER));
        let new = new_incident(&own, draft(), &creation(&tax)).unwrap();
        assert_eq!(new.reporter.unwrap().name, "user 20");
        assert_eq!(new.channel, Channel::Web);
        let other = IncidentDraft {
            customer_id: Some(CUSTOMER + 1),
            ..draft()
        };
        assert!(matches!(
            new_incident(&own, other, &creation(&tax)),
            Err(TransitionError::Forbidden(_))
        ));
        let levelled = IncidentDraft {
            level: Some(Level::High),
            ..draft()
        };
        let err = new_incident(&own, levelled, &creation(&tax)).unwrap_err();
        assert_eq!(field_of(err), "level");
    }

    #[test]
    fn a_new_incident_needs_a_served_customer_and_a_closed_predecessor() {
        let tax = taxonomy();
        let mut gone = creation(&tax);
        gone.customer = Some(CustomerFacts {
            id: CUSTOMER,
            active: false,
        });
        let err = new_incident(&desk(), draft(), &gone).unwrap_err();
        assert!(matches!(&err, TransitionError::Invalid(e) if e[0].code == "inactive"));
        let recurring = IncidentDraft {
            recurrence_of: Some(4),
            ..draft()
        };
        let mut open = creation(&tax);
        open.recurrence = Some(IncidentRef {
            id: 4,
            customer_id: CUSTOMER,
            status: Status::InProgress,
        });
        let err = new_incident(&desk(), recurring.clone(), &open).unwrap_err();
        assert!(matches!(&err, TransitionError::Invalid(e) if e[0].code == "not_closed"));
        let mut closed = open.clone();
        closed.recurrence = Some(IncidentRef {
            id: 4,
            customer_id: CUSTOMER,
            status: Status::Closed,
        });
        assert_eq!(
            new_incident(&desk(), recurring, &closed)
                .unwrap()
                .recurrence_of,
            Some(4)
        );
    }

    #[test]
    fn history_diffs_leave_out_bookkeeping_fields() {
        let current = incident(Status::New);
        let mut next = current.clone();
        next.version = 9;
        next.updated_at = t0() + Duration::hours(1);
        assert!(diff(Some(&current), &next).is_empty());
        next.title = "新标题".into();
        let changes = diff(Some(&current), &next).into_vec();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "title");
        let (created, events) = created(&current);
        assert!(
            created
                .changes
                .iter()
                .all(|c| c.field != "id" && c.field != "version")
        );
        assert!(created.changes.iter().any(|c| c.field == "status"));
        assert_eq!(events, vec![IncidentEvent::Created]);
    }
}
