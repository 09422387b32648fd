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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CUSTOMER: i64 = 7;

    fn facts(status: Status) -> Facts {
        Facts {
            status,
            tier: Tier::L1,
            customer_id: Some(CUSTOMER),
            user_reported: true,
            user_confirmed: false,
            withdrawal_requested: false,
            classified: true,
            open_customer_issue: false,
        }
    }

    fn all_commands() -> Vec<Command> {
        let mut commands = vec![
            Command::Accept,
            Command::Workaround,
            Command::Resolve,
            Command::Confirm,
            Command::RejectResolution,
            Command::Edit,
            Command::AddNote(NoteVisibility::Internal),
            Command::AddNote(NoteVisibility::Public),
            Command::Withdraw,
            Command::Assign,
        ];
        commands.extend(ClosureCode::ALL.iter().map(|c| Command::Close(*c)));
        commands.extend(
            [
                Escalation::Functional,
                Escalation::RaiseLevel,
                Escalation::LowerLevel,
                Escalation::Hierarchical,
            ]
            .map(Command::Escalate),
        );
        commands
    }

    fn roles(list: &[Role]) -> Roles {
        Roles::new(list.iter().copied())
    }

    /// The expected outcome of every (state × command) pair for a caller who holds every
    /// staff role and is the reporter's organisation, so that only the state decides.
    #[test]
    fn every_state_and_command_pair() {
        let everyone = roles(&[
            Role::ServiceDesk,
            Role::L2Engineer,
            Role::IncidentManager,
            Role::OpsStaff,
        ]);
        let actor = Actor {
            roles: &everyone,
            customer_id: None,
        };
        // The reporter asked to withdraw, so only the state decides a withdrawal too.
        let facts = |status| Facts {
            withdrawal_requested: true,
            ..facts(status)
        };
        use ClosureCode::{Duplicate, Unresolved, Withdrawn};
        use Status::{Closed, InProgress, New};
        let expected: &[(Status, Command, Option<Status>)] = &[
            (New, Command::Accept, Some(InProgress)),
            (New, Command::Workaround, None),
            (New, Command::Resolve, None),
            (New, Command::Confirm, None),
            (New, Command::RejectResolution, None),
            (New, Command::Edit, Some(New)),
            (New, Command::AddNote(NoteVisibility::Internal), Some(New)),
            (New, Command::AddNote(NoteVisibility::Public), Some(New)),
            (New, Command::Close(ClosureCode::Resolved), None),
            (New, Command::Close(Unresolved), None),
            (New, Command::Close(Duplicate), Some(Closed)),
            (New, Command::Close(Withdrawn), Some(Closed)),
            (New, Command::Withdraw, Some(New)),
            (New, Command::Assign, Some(New)),
            (
                New,
                Command::Escalate(Escalation::Functional),
                Some(InProgress),
            ),
            (New, Command::Escalate(Escalation::RaiseLevel), Some(New)),
            (New, Command::Escalate(Escalation::LowerLevel), Some(New)),
            (New, Command::Escalate(Escalation::Hierarchical), Some(New)),
            (InProgress, Command::Accept, None),
            (InProgress, Command::Workaround, Some(InProgress)),
            (InProgress, Command::Resolve, Some(Status::Resolved)),
            (InProgress, Command::Confirm, None),
            (InProgress, Command::RejectResolution, None),
            (InProgress, Command::Edit, Some(InProgress)),
            (
                InProgress,
                Command::AddNote(NoteVisibility::Internal),
                Some(InProgress),
            ),
            (
                InProgress,
                Command::AddNote(NoteVisibility::Public),
                Some(InProgress),
            ),
            (InProgress, Command::Close(ClosureCode::Resolved), None),
            (InProgress, Command::Close(Unresolved), None),
            (InProgress, Command::Close(Duplicate), Some(Closed)),
            (InProgress, Command::Close(Withdrawn), Some(Closed)),
            (InProgress, Command::Withdraw, Some(InProgress)),
            (InProgress, Command::Assign, Some(InProgress)),
            (
                InProgress,
                Command::Escalate(Escalation::Functional),
                Some(InProgress),
            ),
            (
                InProgress,
                Command::Escalate(Escalation::RaiseLevel),
                Some(InProgress),
            ),
            (
                InProgress,
                Command::Escalate(Escalation::LowerLevel),
                Some(InProgress),
            ),
            (
                InProgress,
                Command::Escalate(Escalation::Hierarchical),
                Some(InProgress),
            ),
            (Status::Resolved, Command::Accept, None),
            (Status::Resolved, Command::Workaround, None),
            (Status::Resolved, Command::Resolve, None),
            (Status::Resolved, Command::Confirm, Some(Status::Resolved)),
            (
                Status::Resolved,
                Command::RejectResolution,
                Some(InProgress),
            ),
            (Status::Resolved, Command::Edit, Some(Status::Resolved)),
            (
                Status::Resolved,
                Command::AddNote(NoteVisibility::Internal),
                Some(Status::Resolved),
            ),
            (
                Status::Resolved,
                Command::AddNote(NoteVisibility::Public),
                Some(Status::Resolved),
            ),
            // Unconfirmed user-reported: refused for want of confirmation (tested below).
            (
                Status::Resolved,
                Command::Close(ClosureCode::Resolved),
                None,
            ),
            (Status::Resolved, Command::Close(Unresolved), None),
            (Status::Resolved, Command::Close(Duplicate), None),
            (Status::Resolved, Command::Close(Withdrawn), None),
            (Status::Resolved, Command::Withdraw, None),
            (Status::Resolved, Command::Assign, None),
            (
                Status::Resolved,
                Command::Escalate(Escalation::Functional),
                None,
            ),
            (
                Status::Resolved,
                Command::Escalate(Escalation::RaiseLevel),
                None,
            ),
            (
                Status::Resolved,
                Command::Escalate(Escalation::LowerLevel),
                None,
            ),
            (
                Status::Resolved,
                Command::Escalate(Escalation::Hierarchical),
                None,
            ),
        ];
        assert_eq!(expected.len(), 3 * all_commands().len());
        for (status, command, outcome) in expected {
            let result = decide(&facts(*status), &actor, *command);
            assert_eq!(
                result.as_ref().ok(),
                outcome.as_ref(),
                "{status} {command:?}: {result:?}"
            );
        }
        for command in all_commands() {
            assert_eq!(
                decide(&facts(Closed), &actor, command),
                Err(TransitionError::IncidentClosed),
                "{command:?}"
            );
        }
    }

    #[test]
    fn illegal_transitions_name_the_state_and_the_allowed_actions() {
        let desk = roles(&[Role::ServiceDesk]);
        let actor = Actor {
            roles: &desk,
            customer_id: None,
        };
        let err = decide(&facts(Status::New), &actor, Command::Resolve).unwrap_err();
        assert_eq!(
            err,
            TransitionError::IllegalTransition {
                status: Status::New,
                action: Action::Resolve,
                allowed: &[
                    Action::Accept,
                    Action::Assign,
                    Action::Withdraw,
                    Action::Close,
                    Action::Edit,
                    Action::AddNote,
                    Action::Escalate
                ],
            }
        );
    }

    #[test]
    fn closing_a_resolved_user_reported_incident_needs_confirmation() {
        let desk = roles(&[Role::ServiceDesk]);
        let actor = Actor {
            roles: &desk,
            customer_id: None,
        };
        let mut f = facts(Status::Resolved);
        assert_eq!(
            decide(&f, &actor, Command::Close(ClosureCode::Resolved)),
            Err(TransitionError::ConfirmationRequired)
        );
        f.user_confirmed = true;
        assert_eq!(
            decide(&f, &actor, Command::Close(ClosureCode::Resolved)),
            Ok(Status::Closed)
        );
        f.user_confirmed = false;
        f.user_reported = false;
        assert_eq!(
            decide(&f, &actor, Command::Close(ClosureCode::Unresolved)),
            Ok(Status::Closed)
        );
    }

    #[test]
    fn withdrawing_a_user_reported_incident_needs_the_reporters_request() {
        let desk = roles(&[Role::ServiceDesk]);
        let actor = Actor {
            roles: &desk,
            customer_id: None,
        };
        let mut f = facts(Status::InProgress);
        assert_eq!(
            decide(&f, &actor, Command::Close(ClosureCode::Withdrawn)),
            Err(TransitionError::WithdrawalNotRequested)
        );
        // A duplicate is the desk's own decision.
        assert_eq!(
            decide(&f, &actor, Command::Close(ClosureCode::Duplicate)),
            Ok(Status::Closed)
        );
        f.withdrawal_requested = true;
        assert_eq!(
            decide(&f, &actor, Command::Close(ClosureCode::Withdrawn)),
            Ok(Status::Closed)
        );
        f.withdrawal_requested = false;
        f.user_reported = false;
        assert_eq!(
            decide(&f, &actor, Command::Close(ClosureCode::Withdrawn)),
            Ok(Status::Closed)
        );
    }

    #[test]
    fn the_reporters_organisation_or_the_desk_asks_to_withdraw() {
        let f = facts(Status::New);
        let customer = roles(&[Role::Customer]);
        for (held, customer_id, allowed) in [
            (customer.clone(), Some(CUSTOMER), true),
            (customer, Some(CUSTOMER + 1), false),
            (roles(&[Role::ServiceDesk]), None, true),
            (roles(&[Role::L2Engineer]), None, false),
            (roles(&[Role::IncidentManager]), None, false),
        ] {
            let actor = Actor {
                roles: &held,
                customer_id,
            };
            assert_eq!(
                decide(&f, &actor, Command::Withdraw).is_ok(),
                allowed,
                "{held:?}"
            );
        }
    }

    #[test]
    fn staff_of_the_tier_and_incident_managers_assign() {
        let mut f = facts(Status::InProgress);
        let act = |r: &[Role], f: &Facts| {
            let held = roles(r);
            decide(
                f,
                &Actor {
                    roles: &held,
                    customer_id: None,
                },
                Command::Assign,
            )
            .is_ok()
        };
        assert!(act(&[Role::ServiceDesk], &f));
        assert!(!act(&[Role::L2Engineer], &f));
        assert!(act(&[Role::IncidentManager], &f));
        f.tier = Tier::L2;
        assert!(act(&[Role::L2Engineer], &f));
        assert!(!act(&[Role::ServiceDesk], &f));
        assert!(!act(&[Role::OpsStaff], &f));
        assert!(!act(&[Role::Customer], &f));
    }

    #[test]
    fn closure_codes_must_fit_the_state() {
        let desk = roles(&[Role::ServiceDesk]);
        let actor = Actor {
            roles: &desk,
            customer_id: None,
        };
        let err = decide(
            &facts(Status::InProgress),
            &actor,
            Command::Close(ClosureCode::Resolved),
        )
        .unwrap_err();
        assert!(matches!(err, TransitionError::ClosureCodeNotAllowed { .. }));
        assert!(err.to_string().contains("duplicate or withdrawn"));
    }

    #[test]
    fn only_the_service_desk_closes() {
        for role in Role::ALL.into_iter().filter(|r| *r != Role::ServiceDesk) {
            let held = roles(&[role]);
            let actor = Actor {
                roles: &held,
                customer_id: Some(CUSTOMER),
            };
            let result = decide(
                &facts(Status::New),
                &actor,
                Command::Close(ClosureCode::Withdrawn),
            );
            assert!(
                matches!(result, Err(TransitionError::Forbidden(_))),
                "{role}"
            );
        }
    }

    #[test]
    fn tier_decides_who_works_the_incident() {
        let desk = roles(&[Role::ServiceDesk]);
        let l2 = roles(&[Role::L2Engineer]);
        let manager = roles(&[Role::IncidentManager]);
        let ops = roles(&[Role::OpsStaff]);
        let mut f = facts(Status::InProgress);
        let act = |r: &Roles, f: &Facts| {
            decide(
                f,
                &Actor {
                    roles: r,
                    customer_id: None,
                },
                Command::Resolve,
            )
        };
        assert!(act(&desk, &f).is_ok());
        assert!(act(&l2, &f).is_err());
        assert!(act(&ops, &f).is_err());
        f.tier = Tier::L2;
        assert!(matches!(act(&desk, &f), Err(TransitionError::Forbidden(_))));
        assert!(act(&l2, &f).is_ok());
        assert!(act(&manager, &f).is_ok());
    }

    #[test]
    fn resolving_needs_classification_and_no_open_customer_issue() {
        let desk = roles(&[Role::ServiceDesk]);
        let actor = Actor {
            roles: &desk,
            customer_id: None,
        };
        let mut f = facts(Status::InProgress);
        f.classified = false;
        assert_eq!(
            decide(&f, &actor, Command::Resolve),
            Err(TransitionError::ClassificationRequired)
        );
        f.classified = true;
        f.open_customer_issue = true;
        assert_eq!(
            decide(&f, &actor, Command::Resolve),
            Err(TransitionError::OpenCoordinationTicket)
        );
    }

    #[test]
    fn confirmation_belongs_to_the_reporters_organisation_or_the_desk() {
        let customer = roles(&[Role::Customer]);
        let f = facts(Status::Resolved);
        let own = Actor {
            roles: &customer,
            customer_id: Some(CUSTOMER),
        };
        let other = Actor {
            roles: &customer,
            customer_id: Some(CUSTOMER + 1),
        };
        assert_eq!(decide(&f, &own, Command::Confirm), Ok(Status::Resolved));
        assert!(matches!(
            decide(&f, &other, Command::Confirm),
            Err(TransitionError::Forbidden(_))
        ));
        let l2 = roles(&[Role::L2Engineer]);
        let engineer = Actor {
            roles: &l2,
            customer_id: None,
        };
        assert!(decide(&f, &engineer, Command::RejectResolution).is_err());
        let mut confirmed = f;
        confirmed.user_confirmed = true;
        assert!(matches!(
            decide(&confirmed, &own, Command::Confirm),
            Err(TransitionError::IllegalTransition { .. })
        ));
        assert_eq!(
            decide(&confirmed, &own, Command::RejectResolution),
            Ok(Status::InProgress)
        );
    }

    #[test]
    fn files_come_and_go_while_open_and_a_closed_incident_keeps_its_own() {
        let customer = roles(&[Role::Customer]);
        let desk = roles(&[Role::ServiceDesk]);
        let own = Actor {
            roles: &customer,
            customer_id: Some(CUSTOMER),
        };
        let other = Actor {
            roles: &customer,
            customer_id: Some(CUSTOMER + 1),
        };
        let staff = Actor {
            roles: &desk,
            customer_id: None,
        };
        for status in [Status::New, Status::InProgress, Status::Resolved] {
            let f = facts(status);
            assert_eq!(
                decide(&f, &own, Command::Attach(NoteVisibility::Public)),
                Ok(status)
            );
            assert!(decide(&f, &own, Command::Attach(NoteVisibility::Internal)).is_err());
            assert!(decide(&f, &other, Command::Attach(NoteVisibility::Public)).is_err());
            assert!(decide(&f, &staff, Command::Attach(NoteVisibility::Internal)).is_ok());
            assert!(decide(&f, &own, Command::Detach { own: true }).is_ok());
            assert!(decide(&f, &own, Command::Detach { own: false }).is_err());
            assert!(decide(&f, &staff, Command::Detach { own: false }).is_ok());
        }
        let closed = facts(Status::Closed);
        for command in [
            Command::Attach(NoteVisibility::Public),
            Command::Detach { own: true },
        ] {
            assert_eq!(
                decide(&closed, &staff, command),
                Err(TransitionError::IncidentClosed)
            );
        }
    }

    #[test]
    fn customers_write_public_notes_only_and_never_edit() {
        let customer = roles(&[Role::Customer]);
        let own = Actor {
            roles: &customer,
            customer_id: Some(CUSTOMER),
        };
        let f = facts(Status::New);
        assert!(decide(&f, &own, Command::AddNote(NoteVisibility::Public)).is_ok());
        assert!(decide(&f, &own, Command::AddNote(NoteVisibility::Internal)).is_err());
        assert!(decide(&f, &own, Command::Edit).is_err());
        assert!(decide(&f, &own, Command::Accept).is_err());
    }

    #[test]
    fn escalation_rules() {
        let act = |roles: &[Role], f: &Facts, e: Escalation| {
            let held = Roles::new(roles.iter().copied());
            decide(
                f,
                &Actor {
                    roles: &held,
                    customer_id: None,
                },
                Command::Escalate(e),
            )
        };
        let f = facts(Status::New);
        assert_eq!(
            act(&[Role::ServiceDesk], &f, Escalation::Functional),
            Ok(Status::InProgress)
        );
        assert!(act(&[Role::L2Engineer], &f, Escalation::Functional).is_err());
        assert!(act(&[Role::OpsStaff], &f, Escalation::RaiseLevel).is_err());
        assert!(act(&[Role::L2Engineer], &f, Escalation::RaiseLevel).is_ok());
        assert!(act(&[Role::ServiceDesk], &f, Escalation::LowerLevel).is_err());
        assert!(act(&[Role::IncidentManager], &f, Escalation::LowerLevel).is_ok());
        assert!(act(&[Role::OpsStaff], &f, Escalation::Hierarchical).is_ok());
        assert!(act(&[Role::Customer], &f, Escalation::Hierarchical).is_err());
        let at_l2 = Facts {
            tier: Tier::L2,
            ..f
        };
        assert!(matches!(
            act(&[Role::IncidentManager], &at_l2, Escalation::Functional),
            Err(TransitionError::AlreadyAtL2 { .. })
        ));
    }

    fn any_roles() -> impl Strategy<Value = Roles> {
        proptest::sample::subsequence(Role::ALL.to_vec(), 0..=3).prop_map(Roles::new)
    }

    fn any_command() -> impl Strategy<Value = Command> {
        prop_oneof![
            Just(Command::Accept),
            Just(Command::Workaround),
            Just(Command::Resolve),
            Just(Command::Confirm),
            Just(Command::RejectResolution),
            Just(Command::Edit),
            Just(Command::Withdraw),
            Just(Command::Assign),
            proptest::sample::select(NoteVisibility::ALL.to_vec()).prop_map(Command::AddNote),
            proptest::sample::select(ClosureCode::ALL.to_vec()).prop_map(Command::Close),
            proptest::sample::select(vec![
                Escalation::Functional,
                Escalation::RaiseLevel,
                Escalation::LowerLevel,
                Escalation::Hierarchical,
            ])
            .prop_map(Command::Escalate),
        ]
    }

    fn step() -> impl Strategy<Value = (Command, Roles, Option<i64>, bool)> {
        (
            any_command(),
            any_roles(),
            proptest::option::of(CUSTOMER..CUSTOMER + 2),
            any::<bool>(),
        )
    }

    proptest! {
        /// Random action sequences by random callers never break the procedure's rules.
        #[test]
        fn random_sequences_keep_the_invariants(
            user_reported in any::<bool>(),
            tier_l2 in any::<bool>(),
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            let mut f = Facts {
                status: Status::New,
                tier: if tier_l2 { Tier::L2 } else { Tier::L1 },
                customer_id: Some(CUSTOMER),
                user_reported,
                user_confirmed: false,
                withdrawal_requested: false,
                classified: false,
                open_customer_issue: false,
            };
            for (command, roles, customer_id, classify) in steps {
                if classify && f.status != Status::Closed {
                    f.classified = true;
                }
                let before = f;
                let actor = Actor { roles: &roles, customer_id };
                let result = decide(&f, &actor, command);
                if before.status == Status::Closed {
                    // A closed incident never changes.
                    prop_assert_eq!(result, Err(TransitionError::IncidentClosed));
                    continue;
                }
                let Ok(next) = result else { continue };
                if next == Status::Closed {
                    // Only the service desk closes.
                    prop_assert!(roles.has(Role::ServiceDesk));
                    // A user-reported incident is never closed as resolved or unresolved
                    // without the reporter's confirmation.
                    if before.status == Status::Resolved && user_reported {
                        prop_assert!(before.user_confirmed);
                    }
                    // Nor withdrawn unless the reporter asked.
                    if command == Command::Close(ClosureCode::Withdrawn) && user_reported {
                        prop_assert!(before.withdrawal_requested);
                    }
                }
                match command {
                    Command::Withdraw => f.withdrawal_requested = true,
                    Command::Confirm => f.user_confirmed = true,
                    Command::RejectResolution | Command::Resolve => f.user_confirmed = false,
                    _ => {}
                }
                f.status = next;
            }
        }
    }
}
