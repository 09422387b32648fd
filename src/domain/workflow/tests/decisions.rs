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
        attachment_ids: vec![],
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
    let requested = Incident {
        withdrawal_requested_at: Some(t0()),
        ..incident(Status::New)
    };
    let err = decide(
        &requested,
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
        &Incident {
            withdrawal_requested_at: Some(t0()),
            ..incident(Status::New)
        },
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
        vec![
            "accept", "assign", "withdraw", "close", "edit", "note", "escalate"
        ]
    );
    let own = caller(20, &[Role::Customer], Some(CUSTOMER));
    assert_eq!(allowed_actions(&new, &own, false), vec!["withdraw", "note"]);
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
        user_reported: false,
        channel: Channel::Other,
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
        &Incident {
            withdrawal_requested_at: Some(t0()),
            ..incident(Status::New)
        },
        &desk(),
        close(ClosureCode::Withdrawn, None, Some("用户撤回")),
        &lookups(&taxonomy, now),
    )
    .unwrap();
    assert_eq!(withdrawn.incident.follow_up_due_at, None);
}

fn user(id: i64, role: Role, active: bool) -> UserFacts {
    UserFacts {
        id,
        active,
        roles: Roles::new([role]),
    }
}

#[test]
fn the_desk_records_a_withdrawal_with_its_channel_and_the_reporters_words() {
    let tax = taxonomy();
    let working = incident(Status::InProgress);
    let withdraw = |channel: Option<Channel>, note: Option<&str>| IncidentCommand::Withdraw {
        channel,
        note: note.map(str::to_owned),
    };
    let err = decide(
        &working,
        &desk(),
        withdraw(None, None),
        &lookups(&tax, t0()),
    )
    .unwrap_err();
    let TransitionError::Invalid(errors) = err else {
        panic!("expected field errors")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["channel", "note"]);
    let recorded = decide(
        &working,
        &desk(),
        withdraw(Some(Channel::Phone), Some("问题已自行恢复，不用处理了")),
        &lookups(&tax, t0()),
    )
    .unwrap();
    assert_eq!(recorded.incident.withdrawal_requested_at, Some(t0()));
    assert_eq!(recorded.incident.status, Status::InProgress);
    let entry = recorded.history.unwrap();
    assert_eq!(entry.action, "withdraw");
    assert!(!entry.internal);
    assert_eq!(
        entry.comment.as_deref(),
        Some("requested by phone: 问题已自行恢复，不用处理了")
    );
    // The reporter's own users ask without saying how.
    let own = caller(20, &[Role::Customer], Some(CUSTOMER));
    let asked = decide(&working, &own, withdraw(None, None), &lookups(&tax, t0())).unwrap();
    assert_eq!(asked.incident.withdrawal_requested_at, Some(t0()));
    // After the request, the desk may close it as withdrawn.
    let closed = decide(
        &recorded.incident,
        &desk(),
        close(ClosureCode::Withdrawn, None, Some("用户撤回")),
        &lookups(&tax, t0()),
    )
    .unwrap();
    assert_eq!(closed.incident.status, Status::Closed);
    assert_eq!(
        closed.cancel_tickets.as_deref(),
        Some("incident INC-000001 closed as withdrawn")
    );
}

#[test]
fn a_user_reported_incident_keeps_its_reporter() {
    let tax = taxonomy();
    let resolved = incident(Status::Resolved);
    let remove = IncidentCommand::Edit(IncidentEdit {
        reporter: Some(None),
        ..IncidentEdit::default()
    });
    let err = decide(&resolved, &desk(), remove.clone(), &lookups(&tax, t0())).unwrap_err();
    assert_eq!(field_of(err), "reporter");
    // Its details may be corrected, and the correction is the reporter's to read.
    let correct = IncidentEdit {
        reporter: Some(Some(Reporter {
            name: "王医生".into(),
            phone: Some("0532-1234".into()),
            email: None,
        })),
        ..IncidentEdit::default()
    };
    let corrected = decide(
        &resolved,
        &desk(),
        IncidentCommand::Edit(correct),
        &lookups(&tax, t0()),
    )
    .unwrap();
    assert!(!corrected.history.unwrap().internal);
    // An incident staff found may lose the reporter it never needed.
    let found = Incident {
        user_reported: false,
        channel: Channel::Other,
        ..resolved
    };
    assert!(decide(&found, &desk(), remove, &lookups(&tax, t0())).is_ok());
}

#[test]
fn an_incident_is_handed_to_an_active_user_of_its_tier_with_a_reason() {
    let tax = taxonomy();
    let mut working = incident(Status::InProgress);
    working.tier = Tier::L2;
    working.assignee_id = Some(30);
    let l2 = caller(30, &[Role::L2Engineer], None);
    let assign = |id: i64, reason: &str| IncidentCommand::Assign {
        assignee_id: id,
        reason: reason.into(),
    };
    assert_eq!(assign(31, "x").needs().user, Some(31));
    let with = |user: Option<UserFacts>, command: IncidentCommand| {
        let mut facts = lookups(&tax, t0());
        facts.user = user;
        decide(&working, &l2, command, &facts)
    };
    let code = |result: Result<Outcome, TransitionError>| match result {
        Err(TransitionError::Invalid(errors)) => {
            format!("{}:{}", errors[0].field, errors[0].code)
        }
        other => panic!("expected a field error, got {other:?}"),
    };
    assert_eq!(
        code(with(
            Some(user(31, Role::L2Engineer, true)),
            assign(31, " ")
        )),
        "reason:required"
    );
    assert_eq!(
        code(with(None, assign(31, "专项"))),
        "assignee_id:not_found"
    );
    assert_eq!(
        code(with(
            Some(user(31, Role::L2Engineer, false)),
            assign(31, "专项")
        )),
        "assignee_id:invalid"
    );
    // The incident is at tier l2: the service desk does not work it.
    assert_eq!(
        code(with(
            Some(user(31, Role::ServiceDesk, true)),
            assign(31, "专项")
        )),
        "assignee_id:invalid"
    );
    assert_eq!(
        code(with(
            Some(user(30, Role::L2Engineer, true)),
            assign(30, "专项")
        )),
        "assignee_id:unchanged"
    );
    let handed = with(
        Some(user(31, Role::L2Engineer, true)),
        assign(31, "数据库专项，转交王工"),
    )
    .unwrap();
    assert_eq!(handed.incident.assignee_id, Some(31));
    assert_eq!(handed.incident.status, Status::InProgress);
    assert_eq!(handed.events, vec![IncidentEvent::Assigned]);
    let entry = handed.history.unwrap();
    assert_eq!(entry.action, "assign");
    assert!(entry.internal);
    assert_eq!(entry.comment.as_deref(), Some("数据库专项，转交王工"));
    // The service desk does not hand on an L2 incident.
    let mut facts = lookups(&tax, t0());
    facts.user = Some(user(31, Role::L2Engineer, true));
    assert!(matches!(
        decide(&working, &desk(), assign(31, "x"), &facts),
        Err(TransitionError::Forbidden(_))
    ));
}

#[test]
fn closing_a_duplicate_names_the_surviving_incident() {
    let tax = taxonomy();
    let mut facts = lookups(&tax, t0());
    facts.incident = Some(IncidentRef {
        id: 42,
        customer_id: Some(CUSTOMER),
        status: Status::InProgress,
    });
    let closed = decide(
        &incident(Status::New),
        &desk(),
        close(ClosureCode::Duplicate, Some(42), Some("同一故障")),
        &facts,
    )
    .unwrap();
    let entry = closed.history.unwrap();
    assert_eq!(
        entry.comment.as_deref(),
        Some("duplicate of INC-000042\n\n同一故障")
    );
    assert!(!entry.internal);
    // The customer reads the surviving number, not the desk's note.
    let (_, comment) = customer_view("close", entry.changes, entry.comment);
    assert_eq!(comment.as_deref(), Some("duplicate of INC-000042"));
}

#[test]
fn a_problem_tickets_change_is_recorded_on_the_incident_internally() {
    let tax = taxonomy();
    let ops = caller(40, &[Role::OpsStaff], None);
    let record = IncidentCommand::RecordCoordination {
        comment: "原因分析：索引损坏".into(),
        change_ref: Some("CHG-2026-001".into()),
    };
    let outcome = decide(
        &incident(Status::Resolved),
        &ops,
        record.clone(),
        &lookups(&tax, t0()),
    )
    .unwrap();
    assert_eq!(outcome.incident.change_ref.as_deref(), Some("CHG-2026-001"));
    let entry = outcome.history.unwrap();
    assert_eq!(entry.action, "coordination_resolved");
    assert!(entry.internal);
    assert_eq!(
        decide(
            &incident(Status::Closed),
            &ops,
            record,
            &lookups(&tax, t0())
        ),
        Err(TransitionError::IncidentClosed)
    );
}

#[test]
fn customers_read_public_entries_without_the_desks_internal_words() {
    use crate::domain::changes::FieldChange;
    use serde_json::json;
    let change = |field: &str, old, new| FieldChange {
        field: field.into(),
        old,
        new,
    };
    let public = |action, changes: &[FieldChange], escalation| {
        history_visibility(action, changes, None, escalation) == NoteVisibility::Public
    };
    assert!(public(Action::Accept, &[], None));
    assert!(public(Action::Withdraw, &[], None));
    assert!(public(
        Action::Escalate,
        &[],
        Some(EscalationKind::Priority)
    ));
    assert!(!public(
        Action::Escalate,
        &[],
        Some(EscalationKind::Functional)
    ));
    assert!(!public(
        Action::Escalate,
        &[],
        Some(EscalationKind::Hierarchical)
    ));
    assert!(!public(Action::Assign, &[], None));
    assert!(!public(Action::CoordinationResolved, &[], None));
    assert!(!public(Action::EventAcknowledged, &[], None));
    let reporter = change("reporter", json!({"name": "王"}), json!({"name": "王医生"}));
    let title = change("title", json!("a"), json!("b"));
    assert!(public(Action::Edit, std::slice::from_ref(&reporter), None));
    assert!(!public(Action::Edit, &[reporter, title], None));
    // Accepting shows that it was taken, not by whom; a level change, not why.
    let (changes, _) = customer_view(
        "accept",
        vec![
            change("status", json!("new"), json!("in_progress")),
            change("assignee_id", json!(null), json!(10)),
        ],
        None,
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field, "status");
    let (changes, comment) = customer_view(
        "escalate",
        vec![
            change("level", json!("low"), json!("high")),
            change("assignee_id", json!(1), json!(2)),
        ],
        Some("内部判断".into()),
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(comment, None);
}
