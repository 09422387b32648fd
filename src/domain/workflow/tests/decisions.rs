//! Decisions on existing incidents: visibility, state order, closing, raises, assignees,
//! resolving, the SLA watcher, allowed actions and follow-ups.

use super::*;

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
        customer_id: Some(customer_id),
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
            knowledge_entry_id: None,
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

#[test]
fn closing_a_user_reported_incident_as_resolved_makes_a_follow_up_due() {
    let taxonomy = taxonomy();
    let now = t0() + Duration::hours(5);
    let confirmed = Incident {
        user_confirmed_at: Some(t0() + Duration::hours(4)),
        resolved_at: Some(t0() + Duration::hours(3)),
        solution: Some("重启服务".into()),
        cause: Some("unknown".into()),
        subcause: Some("unclear_direct_fix".into()),
        ..incident(Status::Resolved)
    };
    let closed = decide(
        &confirmed,
        &desk(),
        close(ClosureCode::Resolved, None, None),
        &lookups(&taxonomy, now),
    )
    .unwrap();
    assert_eq!(
        closed.incident.follow_up_due_at,
        Some(now + Duration::hours(72))
    );
    // Nobody to call back: no reporter, or the report was withdrawn.
    let unreported = Incident {
        reporter: None,
        ..confirmed.clone()
    };
    let closed = decide(
        &unreported,
        &desk(),
        close(ClosureCode::Unresolved, None, None),
        &lookups(&taxonomy, now),
    )
    .unwrap();
    assert_eq!(closed.incident.follow_up_due_at, None);
    let withdrawn = decide(
        &incident(Status::New),
        &desk(),
        close(ClosureCode::Withdrawn, None, Some("用户撤回")),
        &lookups(&taxonomy, now),
    )
    .unwrap();
    assert_eq!(withdrawn.incident.follow_up_due_at, None);
}
