//! The commands an incident takes, and what each needs looked up.

use super::super::escalation::{PriorityTrigger, SlaTrigger};
use super::super::incident::{
    Channel, ClosureCode, Incident, IncidentKind, NoteVisibility, Reporter,
};
use super::super::level::Level;
use super::super::state_machine::{Command, Escalation, MonitoringEvent};

/// Changes to an incident's descriptive fields: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct IncidentEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub reporter: Option<Option<Reporter>>,
    pub source_system: Option<Option<String>>,
    pub customer_id: Option<i64>,
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
    /// The published knowledge entry that solved it.
    pub knowledge_entry_id: Option<i64>,
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
        /// How the service desk obtained it (`email` for a confirmation link).
        channel: Option<Channel>,
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
    /// The reporter asks to drop the incident (SPEC §4.2 `withdraw`).
    Withdraw {
        /// How the service desk received the request; required when the desk records it.
        channel: Option<Channel>,
        /// The reporter's words; required when the desk records it.
        note: Option<String>,
    },
    /// Hand the incident to another engineer of its tier (SPEC §4.2 `assign`).
    Assign {
        /// An active user of the incident's tier.
        assignee_id: i64,
        /// Why (shift change, specialist, ...).
        reason: String,
    },
    /// A coordination ticket of the incident was resolved (SPEC §6): its result goes into
    /// the incident's history, and a problem ticket's change into `change_ref`.
    RecordCoordination {
        /// What the ticket's assignee found, did and achieved.
        comment: String,
        /// The change request a problem ticket named.
        change_ref: Option<String>,
    },
    /// Add a note.
    AddNote {
        /// Who may read it.
        visibility: NoteVisibility,
        /// Its text.
        body: String,
        /// Attachments of the incident it names.
        attachment_ids: Vec<i64>,
    },
    /// Escalate.
    Escalate(EscalationRequest),
    /// A monitoring event on the open incident of its `dedup_key` (SPEC §8).
    Monitoring(MonitoringEvent),
    /// A new report that duplicates this unresolved incident, recorded on it (SPEC §8).
    ReportAgain {
        /// The new report's title.
        title: String,
        /// The new report's description.
        description: Option<String>,
    },
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
    /// A customer organisation the command names.
    pub customer: Option<i64>,
    /// The deadlines in force (targets and calendar), for level changes.
    pub deadlines: bool,
    /// A knowledge entry the command names (the one that solved the incident).
    pub knowledge_entry: Option<i64>,
}

impl IncidentCommand {
    /// The facts this command needs looked up.
    pub fn needs(&self) -> Needs {
        match self {
            IncidentCommand::Resolve(Resolution {
                knowledge_entry_id: Some(id),
                ..
            }) => Needs {
                knowledge_entry: Some(*id),
                ..Needs::default()
            },
            IncidentCommand::Accept { assignee_id } => Needs {
                user: *assignee_id,
                ..Needs::default()
            },
            IncidentCommand::Assign { assignee_id, .. } => Needs {
                user: Some(*assignee_id),
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
                customer: edit.customer_id,
                deadlines: edit.affects_data_upload == Some(true)
                    || edit.affects_onsite_work == Some(true),
                ..Needs::default()
            },
            _ => Needs::default(),
        }
    }

    /// The state machine's command for this one on `incident`.
    pub(super) fn machine_command(&self, incident: &Incident) -> Command {
        match self {
            IncidentCommand::Edit(_) => Command::Edit,
            IncidentCommand::Accept { .. } => Command::Accept,
            IncidentCommand::Workaround { .. } => Command::Workaround,
            IncidentCommand::Resolve(_) => Command::Resolve,
            IncidentCommand::Confirm { .. } => Command::Confirm,
            IncidentCommand::RejectResolution { .. } => Command::RejectResolution,
            IncidentCommand::Close { closure_code, .. } => Command::Close(*closure_code),
            IncidentCommand::Withdraw { .. } => Command::Withdraw,
            IncidentCommand::Assign { .. } => Command::Assign,
            IncidentCommand::RecordCoordination { .. } => Command::RecordCoordination,
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
            IncidentCommand::Monitoring(event) => Command::Monitoring(*event),
            IncidentCommand::ReportAgain { .. } => Command::ReportAgain,
        }
    }
}
