//! Creating incidents and the history diff.

use super::*;

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
        reporter: Some(Reporter {
            name: "王医生".into(),
            phone: None,
            email: None,
        }),
        ..IncidentDraft::default()
    }
}

#[test]
fn an_incident_from_a_human_channel_names_its_reporter_and_is_user_reported_for_good() {
    let tax = taxonomy();
    for channel in [
        Channel::Phone,
        Channel::Web,
        Channel::Email,
        Channel::Onsite,
    ] {
        let anonymous = IncidentDraft {
            channel: Some(channel),
            reporter: None,
            ..draft()
        };
        let err = new_incident(&desk(), anonymous, &creation(&tax)).unwrap_err();
        assert_eq!(field_of(err), "reporter", "{channel}");
        let named = IncidentDraft {
            channel: Some(channel),
            ..draft()
        };
        assert!(
            new_incident(&desk(), named, &creation(&tax))
                .unwrap()
                .user_reported
        );
    }
    // Found by staff or by monitoring: a reporter is optional, and decides.
    for channel in [Channel::Monitoring, Channel::Other] {
        let found = IncidentDraft {
            channel: Some(channel),
            reporter: None,
            ..draft()
        };
        let new = new_incident(&desk(), found, &creation(&tax)).unwrap();
        assert!(!new.user_reported, "{channel}");
        let named = IncidentDraft {
            channel: Some(channel),
            ..draft()
        };
        assert!(
            new_incident(&desk(), named, &creation(&tax))
                .unwrap()
                .user_reported
        );
    }
    // A customer user's report is user-reported whatever channel it names.
    let own = caller(20, &[Role::Customer], Some(CUSTOMER));
    let portal = IncidentDraft {
        channel: Some(Channel::Other),
        reporter: None,
        ..draft()
    };
    assert!(
        new_incident(&own, portal, &creation(&tax))
            .unwrap()
            .user_reported
    );
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
    assert!(new.user_reported);
    assert_eq!((new.status, new.tier), (Status::New, Tier::L1));
}

#[test]
fn a_customer_user_reports_for_its_own_organisation_as_the_reporter_without_a_level() {
    let tax = taxonomy();
    let own = caller(20, &[Role::Customer], Some(CUSTOMER));
    let unnamed = IncidentDraft {
        reporter: None,
        ..draft()
    };
    let new = new_incident(&own, unnamed, &creation(&tax)).unwrap();
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
