//! The incident state machine (SPEC §4.2): the one place that decides whether an action on an
//! incident is legal, for whom, and what status follows. Every write path asks it.

use std::fmt;

use super::incident::{ClosureCode, NoteVisibility, Status, Tier};
use super::role::{Role, Roles};
use super::validation::FieldError;

/// Something a caller wants to do to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Take a new incident into work.
    Accept,
    /// Record a temporary measure; the incident stays in progress.
    Workaround,
    /// Record the solution and cause.
    Resolve,
    /// The reporter confirms the resolution.
    Confirm,
    /// The reporter rejects the resolution; work resumes.
    RejectResolution,
    /// Close with a closure code.
    Close(ClosureCode),
    /// The reporter asks to drop the incident.
    Withdraw,
    /// Hand the incident to another engineer of its tier.
    Assign,
    /// A coordination ticket of the incident was resolved: its result is recorded on the
    /// incident (SPEC §6).
    RecordCoordination,
    /// Change descriptive fields.
    Edit,
    /// Add a note.
    AddNote(NoteVisibility),
    /// Escalate (SPEC §5).
    Escalate(Escalation),
    /// A monitoring event about the incident (SPEC §8).
    Monitoring(MonitoringEvent),
    /// A person reports the same fault again (SPEC §8 `on_duplicate=append`).
    ReportAgain,
    /// Add files of this visibility (SPEC §13).
    Attach(NoteVisibility),
    /// Remove a file; `own` when the caller uploaded it (SPEC §13).
    Detach {
        /// The caller uploaded it.
        own: bool,
    },
}

/// What a monitoring event does to the open incident of its `dedup_key` (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitoringEvent {
    /// The fault fired again: one more occurrence.
    Occurrence,
    /// The sender acknowledged the alert.
    Acknowledge,
    /// The fault recovered while nobody had taken the incident: it resolves itself.
    AutoResolve,
    /// The fault recovered while a person works the incident: recorded, the work goes on.
    RecoveryReported,
}

/// The kinds of escalation, with the direction of a level change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// L1 → L2 with a diagnosis.
    Functional,
    /// A higher level.
    RaiseLevel,
    /// A lower level.
    LowerLevel,
    /// To the incident managers.
    Hierarchical,
}

/// The action names of [`Command`], as used in URLs and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// `accept`.
    Accept,
    /// `workaround`.
    Workaround,
    /// `resolve`.
    Resolve,
    /// `confirm`.
    Confirm,
    /// `reject-resolution`.
    RejectResolution,
    /// `close`.
    Close,
    /// `withdraw`.
    Withdraw,
    /// `assign`.
    Assign,
    /// `coordination_resolved`: a coordination ticket's result recorded on the incident.
    CoordinationResolved,
    /// `edit` (PATCH).
    Edit,
    /// `note`.
    AddNote,
    /// `escalate`.
    Escalate,
    /// `event_triggered`: a monitoring trigger counted as one more occurrence.
    EventTriggered,
    /// `event_acknowledged`: monitoring acknowledged the alert.
    EventAcknowledged,
    /// `auto-resolve`: monitoring reported recovery of a `new` incident.
    AutoResolve,
    /// `event_resolved`: monitoring reported recovery while the incident is worked.
    EventResolved,
    /// `reported_again`: a duplicate report recorded on the incident.
    ReportedAgain,
    /// `attach`: files added (through the attachments resource).
    Attach,
    /// `detach`: a file removed (through the attachments resource).
    Detach,
}

impl Action {
    /// The name used in URLs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Workaround => "workaround",
            Action::Resolve => "resolve",
            Action::Confirm => "confirm",
            Action::RejectResolution => "reject-resolution",
            Action::Close => "close",
            Action::Withdraw => "withdraw",
            Action::Assign => "assign",
            Action::CoordinationResolved => "coordination_resolved",
            Action::Edit => "edit",
            Action::AddNote => "note",
            Action::Escalate => "escalate",
            Action::EventTriggered => "event_triggered",
            Action::EventAcknowledged => "event_acknowledged",
            Action::AutoResolve => "auto-resolve",
            Action::EventResolved => "event_resolved",
            Action::ReportedAgain => "reported_again",
            Action::Attach => "attach",
            Action::Detach => "detach",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Command {
    /// The action this command performs.
    pub fn action(self) -> Action {
        match self {
            Command::Accept => Action::Accept,
            Command::Workaround => Action::Workaround,
            Command::Resolve => Action::Resolve,
            Command::Confirm => Action::Confirm,
            Command::RejectResolution => Action::RejectResolution,
            Command::Close(_) => Action::Close,
            Command::Withdraw => Action::Withdraw,
            Command::Assign => Action::Assign,
            Command::RecordCoordination => Action::CoordinationResolved,
            Command::Edit => Action::Edit,
            Command::AddNote(_) => Action::AddNote,
            Command::Escalate(_) => Action::Escalate,
            Command::Monitoring(MonitoringEvent::Occurrence) => Action::EventTriggered,
            Command::Monitoring(MonitoringEvent::Acknowledge) => Action::EventAcknowledged,
            Command::Monitoring(MonitoringEvent::AutoResolve) => Action::AutoResolve,
            Command::Monitoring(MonitoringEvent::RecoveryReported) => Action::EventResolved,
            Command::ReportAgain => Action::ReportedAgain,
            Command::Attach(_) => Action::Attach,
            Command::Detach { .. } => Action::Detach,
        }
    }
}

/// What the machine needs to know about the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// Current status.
    pub status: Status,
    /// Current tier.
    pub tier: Tier,
    /// The incident's customer organisation; `None` for monitoring's incidents of no known
    /// customer.
    pub customer_id: Option<i64>,
    /// The incident was raised by a user (fixed at creation, SPEC §4).
    pub user_reported: bool,
    /// The reporter has confirmed the current resolution.
    pub user_confirmed: bool,
    /// The reporter has asked to withdraw the incident.
    pub withdrawal_requested: bool,
    /// Category and subcategory are set.
    pub classified: bool,
    /// A `customer_issue` coordination ticket is still open.
    pub open_customer_issue: bool,
}

/// Who is acting.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The caller's roles.
    pub roles: &'a Roles,
    /// The caller's organisation, for customer users.
    pub customer_id: Option<i64>,
}

/// Why a write to an incident was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The incident does not exist for this caller (404): a customer user asking about another
    /// organisation's incident learns nothing about it.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// The command's fields break the rules (422), field by field.
    #[error("invalid fields: {0:?}")]
    Invalid(Vec<FieldError>),
    /// A closed incident never changes (409 `incident_closed`).
    #[error(
        "the incident is closed and can no longer change; report a recurrence as a new incident with recurrence_of"
    )]
    IncidentClosed,
    /// The action is not allowed in this state (409 `illegal_transition`).
    #[error("`{action}` is not allowed while the incident is {status}")]
    IllegalTransition {
        /// Current status.
        status: Status,
        /// The refused action.
        action: Action,
        /// Actions the current state allows.
        allowed: &'static [Action],
    },
    /// A user-reported incident needs the reporter's confirmation first (409 `confirmation_required`).
    #[error(
        "the reporter has not confirmed the resolution; a user-reported incident is closed only after confirmation"
    )]
    ConfirmationRequired,
    /// A user-reported incident is withdrawn only at the reporter's request (409
    /// `confirmation_required`).
    #[error(
        "the reporter has not asked to withdraw the incident; record the request with withdraw first"
    )]
    WithdrawalNotRequested,
    /// Category and subcategory must be set before resolving (422).
    #[error("classify the incident (category and subcategory) before resolving it")]
    ClassificationRequired,
    /// An open customer-problem coordination ticket blocks resolving (409 `open_coordination_ticket`).
    #[error("a customer_issue coordination ticket is still open")]
    OpenCoordinationTicket,
    /// The closure code does not fit the state (422 on `closure_code`).
    #[error("closure code `{code}` is not allowed while the incident is {status}; use {}", .allowed.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" or "))]
    ClosureCodeNotAllowed {
        /// Current status.
        status: Status,
        /// The refused code.
        code: ClosureCode,
        /// Codes allowed in this state.
        allowed: &'static [ClosureCode],
        /// Actions the current state allows.
        actions: &'static [Action],
    },
    /// A functional escalation of an incident already at tier l2 (409 `illegal_transition`).
    #[error("the incident is already at tier l2")]
    AlreadyAtL2 {
        /// Current status.
        status: Status,
        /// Actions the current state allows.
        actions: &'static [Action],
    },
    /// The caller's roles do not allow the action (403).
    #[error("{0}")]
    Forbidden(String),
}

/// What new reports of a fault may do in a state: monitoring events and duplicate reports act
/// on open incidents only, and only a `new` incident resolves itself (SPEC §4.2, §8). They are
/// not actions a client calls, so they are never offered in `allowed_actions`.
fn intake_actions(status: Status) -> &'static [Action] {
    use Action::*;
    match status {
        Status::New => &[
            EventTriggered,
            EventAcknowledged,
            AutoResolve,
            ReportedAgain,
        ],
        Status::InProgress => &[
            EventTriggered,
            EventAcknowledged,
            EventResolved,
            ReportedAgain,
        ],
        Status::Resolved | Status::Closed => &[],
    }
}

/// Actions the state allows to someone (before role checks).
pub fn allowed_actions(facts: &Facts) -> &'static [Action] {
    use Action::*;
    match facts.status {
        Status::New => &[Accept, Assign, Withdraw, Close, Edit, AddNote, Escalate],
        Status::InProgress => &[
            Workaround, Resolve, Assign, Withdraw, Close, Edit, AddNote, Escalate,
        ],
        Status::Resolved if facts.user_confirmed => &[RejectResolution, Close, Edit, AddNote],
        Status::Resolved => &[Confirm, RejectResolution, Close, Edit, AddNote],
        Status::Closed => &[],
    }
}

fn closure_codes(status: Status) -> &'static [ClosureCode] {
    match status {
        Status::Resolved => &[ClosureCode::Resolved, ClosureCode::Unresolved],
        Status::New | Status::InProgress => &[ClosureCode::Duplicate, ClosureCode::Withdrawn],
        Status::Closed => &[],
    }
}

/// The role that works incidents at `tier` (besides incident managers).
pub fn tier_worker(tier: Tier) -> Role {
    match tier {
        Tier::L1 => Role::ServiceDesk,
        Tier::L2 => Role::L2Engineer,
    }
}

fn forbidden(action: Action, who: &str) -> TransitionError {
    TransitionError::Forbidden(format!("`{action}` is for {who}."))
}

/// Decides `command` by `actor` on an incident with `facts`; returns the next status.
pub fn decide(
    facts: &Facts,
    actor: &Actor<'_>,
    command: Command,
) -> Result<Status, TransitionError> {
    if facts.status == Status::Closed {
        return Err(TransitionError::IncidentClosed);
    }
    let action = command.action();
    let allowed = match command {
        Command::Monitoring(_) | Command::ReportAgain => intake_actions(facts.status),
        // A ticket's result is news whatever the incident's open state; it is not offered to
        // clients, who resolve the ticket instead.
        Command::RecordCoordination => &[Action::CoordinationResolved],
        // Files come and go in every open state, through their own resource rather than an
        // incident action, so they are not offered in `allowed_actions` either.
        Command::Attach(_) | Command::Detach { .. } => &[Action::Attach, Action::Detach],
        _ => allowed_actions(facts),
    };
    if !allowed.contains(&action) {
        return Err(TransitionError::IllegalTransition {
            status: facts.status,
            action,
            allowed,
        });
    }

    let roles = actor.roles;
    let worker = tier_worker(facts.tier);
    let works_this_tier = roles.has_any(&[worker, Role::IncidentManager]);
    let own_customer = roles.has(Role::Customer)
        && actor.customer_id.is_some()
        && actor.customer_id == facts.customer_id;
    let tier_rule = match facts.tier {
        Tier::L1 => "the service desk (the incident is at tier l1) or an incident manager",
        Tier::L2 => "L2 engineers (the incident is at tier l2) or an incident manager",
    };

    match command {
        Command::Accept => {
            if !works_this_tier {
                return Err(forbidden(action, tier_rule));
            }
            Ok(Status::InProgress)
        }
        Command::Workaround => {
            if !works_this_tier {
                return Err(forbidden(action, tier_rule));
            }
            Ok(Status::InProgress)
        }
        Command::Resolve => {
            if !works_this_tier {
                return Err(forbidden(action, tier_rule));
            }
            if !facts.classified {
                return Err(TransitionError::ClassificationRequired);
            }
            if facts.open_customer_issue {
                return Err(TransitionError::OpenCoordinationTicket);
            }
            Ok(Status::Resolved)
        }
        Command::Confirm | Command::RejectResolution => {
            if !(own_customer || roles.has(Role::ServiceDesk)) {
                return Err(forbidden(
                    action,
                    "the reporter's organisation or the service desk recording its answer",
                ));
            }
            Ok(if command == Command::Confirm {
                Status::Resolved
            } else {
                Status::InProgress
            })
        }
        Command::Close(code) => {
            if !roles.has(Role::ServiceDesk) {
                return Err(forbidden(action, "the service desk"));
            }
            let codes = closure_codes(facts.status);
            if !codes.contains(&code) {
                return Err(TransitionError::ClosureCodeNotAllowed {
                    status: facts.status,
                    code,
                    allowed: codes,
                    actions: allowed,
                });
            }
            if facts.status == Status::Resolved && facts.user_reported && !facts.user_confirmed {
                return Err(TransitionError::ConfirmationRequired);
            }
            if code == ClosureCode::Withdrawn && facts.user_reported && !facts.withdrawal_requested
            {
                return Err(TransitionError::WithdrawalNotRequested);
            }
            Ok(Status::Closed)
        }
        Command::Withdraw => {
            if !(own_customer || roles.has(Role::ServiceDesk)) {
                return Err(forbidden(
                    action,
                    "the reporter's organisation or the service desk recording its request",
                ));
            }
            Ok(facts.status)
        }
        Command::Assign => {
            if !works_this_tier {
                return Err(forbidden(action, tier_rule));
            }
            Ok(facts.status)
        }
        Command::RecordCoordination => {
            if !roles.is_staff() {
                return Err(forbidden(action, "staff"));
            }
            Ok(facts.status)
        }
        Command::Edit => {
            if !roles.is_staff() {
                return Err(forbidden(action, "staff"));
            }
            Ok(facts.status)
        }
        Command::Escalate(Escalation::Functional) => {
            if !roles.has_any(&[Role::ServiceDesk, Role::IncidentManager]) {
                return Err(forbidden(action, "the service desk or an incident manager"));
            }
            if facts.tier == Tier::L2 {
                return Err(TransitionError::AlreadyAtL2 {
                    status: facts.status,
                    actions: allowed,
                });
            }
            Ok(Status::InProgress)
        }
        Command::Escalate(Escalation::RaiseLevel) => {
            if !roles.has_any(&[Role::ServiceDesk, Role::L2Engineer, Role::IncidentManager]) {
                return Err(forbidden(action, "staff other than ops staff"));
            }
            Ok(facts.status)
        }
        Command::Escalate(Escalation::LowerLevel) => {
            if !roles.has(Role::IncidentManager) {
                return Err(forbidden(action, "incident managers (lowering a level)"));
            }
            Ok(facts.status)
        }
        Command::Escalate(Escalation::Hierarchical) => {
            if !roles.is_staff() {
                return Err(forbidden(action, "staff"));
            }
            Ok(facts.status)
        }
        Command::Monitoring(event) => {
            // Events come from integrations, or from staff posting them by hand.
            if !(roles.has(Role::Integration) || roles.is_staff()) {
                return Err(forbidden(action, "monitoring integrations and staff"));
            }
            Ok(match event {
                MonitoringEvent::AutoResolve => Status::Resolved,
                _ => facts.status,
            })
        }
        Command::ReportAgain => {
            if !(roles.is_staff() || roles.has(Role::Integration) || own_customer) {
                return Err(forbidden(
                    action,
                    "staff, integrations and the incident's organisation",
                ));
            }
            Ok(facts.status)
        }
        // Notes and files: the reporter's organisation writes public ones only.
        Command::AddNote(visibility) | Command::Attach(visibility) => {
            let may = roles.is_staff() || (own_customer && visibility == NoteVisibility::Public);
            if !may {
                return Err(forbidden(
                    action,
                    "staff, or the reporter's organisation for public notes and files",
                ));
            }
            Ok(facts.status)
        }
        Command::Detach { own } => {
            if !(roles.is_staff() || (own_customer && own)) {
                return Err(forbidden(action, "staff and the file's uploader"));
            }
            Ok(facts.status)
        }
    }
}

#[cfg(test)]
mod tests;
