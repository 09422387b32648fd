//! Decisions on known incidents, callers and facts.

use super::*;
use crate::domain::escalation::{EscalationKind, PriorityTrigger};
use crate::domain::incident::{Channel, IncidentKind, Reporter, Tier};
use crate::domain::level::Level;
use crate::domain::sla::SlaTargets;
use crate::domain::state_machine::MonitoringEvent;
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
        customer_id: Some(CUSTOMER),
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
        follow_up_due_at: None,
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
        customer: None,
        open_customer_issue: false,
        deadlines: Some(Deadlines::wall_clock(SlaTargets::procedure_defaults())),
        upload_cutoff: None,
        follow_up_window: Duration::hours(72),
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
        customer_id: Some(CUSTOMER),
        status: Status::InProgress,
    });
    let err = new_incident(&desk(), recurring.clone(), &open).unwrap_err();
    assert!(matches!(&err, TransitionError::Invalid(e) if e[0].code == "not_closed"));
    let mut closed = open.clone();
    closed.recurrence = Some(IncidentRef {
        id: 4,
        customer_id: Some(CUSTOMER),
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
    let changes = diff(Some(&current), &next);
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

fn monitoring() -> Caller {
    caller(50, &[Role::Integration], None)
}

fn from_monitoring(status: Status) -> Incident {
    Incident {
        channel: Channel::Monitoring,
        reporter: None,
        customer_id: None,
        dedup_key: Some("his-db-01/disk".into()),
        ..incident(status)
    }
}

#[test]
fn a_repeated_trigger_counts_one_more_occurrence() {
    let taxonomy = taxonomy();
    let now = t0() + Duration::minutes(5);
    let current = from_monitoring(Status::InProgress);
    let outcome = decide(
        &current,
        &monitoring(),
        IncidentCommand::Monitoring(MonitoringEvent::Occurrence),
        &lookups(&taxonomy, now),
    )
    .unwrap();
    assert_eq!(outcome.incident.occurrences, 2);
    assert_eq!(outcome.incident.last_occurrence_at, Some(now));
    assert_eq!(outcome.incident.status, Status::InProgress);
    let history = outcome.history.unwrap();
    assert_eq!(history.action, "event_triggered");
    let fields: Vec<&str> = history.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["last_occurrence_at", "occurrences"]);
}

#[test]
fn an_acknowledge_is_journalled_without_changing_the_incident() {
    let taxonomy = taxonomy();
    let current = from_monitoring(Status::New);
    let outcome = decide(
        &current,
        &monitoring(),
        IncidentCommand::Monitoring(MonitoringEvent::Acknowledge),
        &lookups(&taxonomy, t0()),
    )
    .unwrap();
    assert!(!outcome.changes_fields());
    let history = outcome.history.unwrap();
    assert_eq!(history.action, "event_acknowledged");
    assert!(history.comment.is_some());
}

#[test]
fn recovery_resolves_a_new_incident_without_classification_and_only_for_monitoring() {
    let taxonomy = taxonomy();
    let now = t0() + Duration::minutes(9);
    let current = from_monitoring(Status::New);
    let command = IncidentCommand::Monitoring(MonitoringEvent::AutoResolve);
    let outcome = decide(
        &current,
        &monitoring(),
        command.clone(),
        &lookups(&taxonomy, now),
    )
    .unwrap();
    let resolved = &outcome.incident;
    assert_eq!(resolved.status, Status::Resolved);
    assert_eq!(
        resolved.solution.as_deref(),
        Some("monitoring reported recovery")
    );
    assert_eq!(resolved.cause.as_deref(), Some("unknown"));
    assert_eq!(resolved.subcause.as_deref(), Some("unclear_direct_fix"));
    assert_eq!(resolved.resolved_at, Some(now));
    assert_eq!(outcome.history.unwrap().action, "auto-resolve");
    assert_eq!(outcome.events, [IncidentEvent::Resolved]);

    // Nobody else resolves this way, and an incident being worked is not resolved by it.
    let customer = caller(60, &[Role::Customer], Some(CUSTOMER));
    let theirs = Incident {
        customer_id: Some(CUSTOMER),
        ..from_monitoring(Status::New)
    };
    let refused = decide(
        &theirs,
        &customer,
        command.clone(),
        &lookups(&taxonomy, now),
    );
    assert!(matches!(refused, Err(TransitionError::Forbidden(_))));
    let worked = decide(
        &from_monitoring(Status::InProgress),
        &monitoring(),
        command.clone(),
        &lookups(&taxonomy, now),
    );
    assert!(matches!(
        worked,
        Err(TransitionError::IllegalTransition { .. })
    ));
    let resolved = decide(
        &from_monitoring(Status::Resolved),
        &monitoring(),
        IncidentCommand::Monitoring(MonitoringEvent::Occurrence),
        &lookups(&taxonomy, now),
    );
    assert!(matches!(
        resolved,
        Err(TransitionError::IllegalTransition { .. })
    ));
}

#[test]
fn an_incident_without_customer_is_staff_only_until_the_desk_sets_one() {
    let taxonomy = taxonomy();
    let current = from_monitoring(Status::New);
    let customer = caller(60, &[Role::Customer], Some(CUSTOMER));
    assert!(!customer.sees(&current));
    assert!(desk().sees(&current));
    assert!(allowed_actions(&current, &customer, false).is_empty());

    let set = |customer_id, found: Option<CustomerFacts>, on: &Incident| {
        let mut facts = lookups(&taxonomy, t0());
        facts.customer = found;
        let edit = IncidentEdit {
            customer_id: Some(customer_id),
            ..IncidentEdit::default()
        };
        decide(on, &desk(), IncidentCommand::Edit(edit), &facts)
    };
    let active = |id| CustomerFacts { id, active: true };
    let outcome = set(CUSTOMER, Some(active(CUSTOMER)), &current).unwrap();
    assert_eq!(outcome.incident.customer_id, Some(CUSTOMER));
    assert!(customer.sees(&outcome.incident));

    let missing = set(CUSTOMER, None, &current).unwrap_err();
    assert_eq!(field_of(missing), "customer_id");
    let inactive = set(
        CUSTOMER,
        Some(CustomerFacts {
            id: CUSTOMER,
            active: false,
        }),
        &current,
    );
    assert_eq!(field_of(inactive.unwrap_err()), "customer_id");
    let owned = incident(Status::New);
    let moved = set(CUSTOMER + 1, Some(active(CUSTOMER + 1)), &owned).unwrap_err();
    assert_eq!(field_of(moved), "customer_id");
    assert!(
        !set(CUSTOMER, Some(active(CUSTOMER)), &owned)
            .unwrap()
            .changes_fields()
    );
}

#[test]
fn a_duplicate_report_counts_on_an_unresolved_incident_only() {
    let taxonomy = taxonomy();
    let now = t0() + Duration::minutes(3);
    let again = || IncidentCommand::ReportAgain {
        title: "收费模块报错".into(),
        description: Some("二楼也报错".into()),
    };
    let reporter = caller(60, &[Role::Customer], Some(CUSTOMER));
    let outcome = decide(
        &incident(Status::New),
        &reporter,
        again(),
        &lookups(&taxonomy, now),
    )
    .unwrap();
    assert_eq!(outcome.incident.occurrences, 2);
    let history = outcome.history.unwrap();
    assert_eq!(history.action, "reported_again");
    assert!(history.comment.unwrap().contains("二楼也报错"));
    let resolved = decide(
        &incident(Status::Resolved),
        &reporter,
        again(),
        &lookups(&taxonomy, now),
    );
    assert!(matches!(
        resolved,
        Err(TransitionError::IllegalTransition { .. })
    ));
    // Nor is it an action anybody is offered.
    assert!(!allowed_actions(&incident(Status::New), &desk(), false).contains(&"reported_again"));
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
