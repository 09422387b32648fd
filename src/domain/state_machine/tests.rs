//! The state machine's rules checked for every state and command pair, one by one, and for
//! random sequences of commands (the invariants).

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
