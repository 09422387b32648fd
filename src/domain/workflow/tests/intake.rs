//! Monitoring events and duplicate reports on open incidents.

use super::*;

fn monitoring() -> Caller {
    caller(50, &[Role::Integration], None)
}

fn from_monitoring(status: Status) -> Incident {
    Incident {
        channel: Channel::Monitoring,
        reporter: None,
        user_reported: false,
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

mod events {
    use super::*;
    use crate::domain::monitoring::{
        Event, EventAction, EventChange, EventPayload, EventResult, OpeningFacts, Severity,
        decide_event,
    };

    fn event(action: EventAction) -> Event {
        Event {
            routing_key: None,
            action,
            dedup_key: "his-db-01/disk".into(),
            payload: Some(EventPayload {
                summary: "Disk full on his-db-01".into(),
                source: "his-db-01".into(),
                severity: Severity::Warning,
                timestamp: None,
                component: None,
                custom_details: None,
                links: vec![],
            }),
        }
    }

    fn facts(_: &EventPayload) -> Result<OpeningFacts, TransitionError> {
        Ok(OpeningFacts {
            customer_id: Some(CUSTOMER),
            ci_id: None,
            deadlines: Deadlines::wall_clock(SlaTargets::procedure_defaults()),
            now: t0(),
        })
    }

    fn never(_: &EventPayload) -> Result<OpeningFacts, TransitionError> {
        panic!("an event on an open incident looked up opening facts")
    }

    #[test]
    fn each_action_and_open_state_has_one_decision() {
        use EventAction::*;
        let taxonomy = taxonomy();
        let cases = [
            (Trigger, None, EventResult::Created),
            (Trigger, Some(Status::New), EventResult::Deduplicated),
            (Trigger, Some(Status::InProgress), EventResult::Deduplicated),
            (Trigger, Some(Status::Resolved), EventResult::Created),
            (Acknowledge, Some(Status::New), EventResult::Noted),
            (Acknowledge, Some(Status::InProgress), EventResult::Noted),
            (Acknowledge, None, EventResult::Ignored),
            (Acknowledge, Some(Status::Closed), EventResult::Ignored),
            (Resolve, Some(Status::New), EventResult::Resolved),
            (Resolve, Some(Status::InProgress), EventResult::Noted),
            (Resolve, None, EventResult::Ignored),
        ];
        for (action, status, result) in cases {
            let open = status.map(from_monitoring);
            let opens = status.is_none_or(|s| !matches!(s, Status::New | Status::InProgress));
            let lookup = if opens { facts } else { never };
            let decision = decide_event(
                &monitoring(),
                &event(action),
                open.as_ref(),
                &lookups(&taxonomy, t0()),
                lookup,
            )
            .unwrap();
            assert_eq!(decision.result, result, "{action} on {status:?}");
            match (result, decision.change) {
                (EventResult::Created, EventChange::Open(new)) => {
                    assert_eq!(new.dedup_key.as_deref(), Some("his-db-01/disk"));
                    assert_eq!(new.customer_id, Some(CUSTOMER));
                    assert_eq!(new.created_by, 50);
                }
                (EventResult::Ignored, EventChange::Ignore) => {}
                (EventResult::Resolved, EventChange::Update(outcome)) => {
                    assert_eq!(outcome.incident.status, Status::Resolved);
                    assert_eq!(outcome.history.unwrap().action, "auto-resolve");
                }
                (EventResult::Deduplicated, EventChange::Update(outcome)) => {
                    assert_eq!(outcome.incident.occurrences, 2);
                }
                (EventResult::Noted, EventChange::Update(outcome)) => {
                    assert!(!outcome.changes_fields());
                    assert!(outcome.history.is_some());
                }
                (result, change) => panic!("{action} on {status:?}: {result} with {change:?}"),
            }
        }
    }

    #[test]
    fn a_trigger_without_payload_or_author_opens_nothing() {
        let taxonomy = taxonomy();
        let mut bare = event(EventAction::Trigger);
        bare.payload = None;
        let refused = decide_event(&monitoring(), &bare, None, &lookups(&taxonomy, t0()), facts);
        assert!(matches!(refused, Err(TransitionError::Invalid(_))));
        let job = Caller {
            id: None,
            ..monitoring()
        };
        let refused = decide_event(
            &job,
            &event(EventAction::Trigger),
            None,
            &lookups(&taxonomy, t0()),
            facts,
        );
        assert!(matches!(refused, Err(TransitionError::Forbidden(_))));
    }
}

#[test]
fn an_occurrence_is_an_update_and_an_acknowledge_no_event() {
    let taxonomy = taxonomy();
    let current = from_monitoring(Status::InProgress);
    let decide_event = |event| {
        decide(
            &current,
            &monitoring(),
            IncidentCommand::Monitoring(event),
            &lookups(&taxonomy, t0()),
        )
        .unwrap()
        .events
    };
    assert_eq!(
        decide_event(MonitoringEvent::Occurrence),
        [IncidentEvent::Updated]
    );
    assert_eq!(decide_event(MonitoringEvent::Acknowledge), []);
}
