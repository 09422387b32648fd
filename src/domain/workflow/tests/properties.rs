//! The confirmation rule over random histories: whatever callers do, in whatever order, a
//! user-reported incident is closed as resolved or unresolved only after its reporter confirmed,
//! and as withdrawn only after the reporter asked (SPEC §4, §4.2).

use proptest::prelude::*;

use super::*;

fn any_caller() -> impl Strategy<Value = Caller> {
    (
        proptest::sample::subsequence(Role::ALL.to_vec(), 0..=3),
        proptest::option::of(CUSTOMER..CUSTOMER + 2),
    )
        .prop_map(|(roles, customer_id)| caller(30, &roles, customer_id))
}

fn any_command() -> impl Strategy<Value = IncidentCommand> {
    let text = || proptest::option::of(Just("用户说明".to_owned()));
    prop_oneof![
        Just(IncidentCommand::Accept { assignee_id: None }),
        Just(IncidentCommand::Workaround {
            description: "切换备用机".into()
        }),
        Just(IncidentCommand::Resolve(Resolution {
            solution: "重启服务".into(),
            cause: "unknown".into(),
            subcause: "unclear_direct_fix".into(),
            category: Some("usage_issue".into()),
            subcategory: Some("query_inaccurate".into()),
            knowledge_entry_id: None,
        })),
        proptest::option::of(Just(Channel::Phone))
            .prop_map(|channel| IncidentCommand::Confirm { channel }),
        proptest::option::of(Just(Channel::Email)).prop_map(|channel| {
            IncidentCommand::RejectResolution {
                reason: "仍然报错".into(),
                channel,
            }
        }),
        (proptest::sample::select(ClosureCode::ALL.to_vec()), text()).prop_map(
            |(closure_code, note)| IncidentCommand::Close {
                closure_code,
                duplicate_of: (closure_code == ClosureCode::Duplicate).then_some(42),
                note,
            }
        ),
        (proptest::option::of(Just(Channel::Email)), text())
            .prop_map(|(channel, note)| IncidentCommand::Withdraw { channel, note }),
        proptest::option::of(Just(Channel::Monitoring)).prop_map(|channel| {
            IncidentCommand::Edit(IncidentEdit {
                reporter: Some(None),
                channel,
                ..IncidentEdit::default()
            })
        }),
        Just(IncidentCommand::Assign {
            assignee_id: 31,
            reason: "交接班".into()
        }),
        proptest::sample::select(vec![
            MonitoringEvent::Occurrence,
            MonitoringEvent::Acknowledge,
            MonitoringEvent::AutoResolve,
            MonitoringEvent::RecoveryReported,
        ])
        .prop_map(IncidentCommand::Monitoring),
    ]
}

proptest! {
    #[test]
    fn no_user_reported_incident_is_closed_without_the_reporters_word(
        user_reported in any::<bool>(),
        steps in proptest::collection::vec((any_command(), any_caller()), 1..50),
    ) {
        let tax = taxonomy();
        let mut current = Incident {
            user_reported,
            channel: if user_reported { Channel::Phone } else { Channel::Other },
            ..incident(Status::New)
        };
        let mut facts = lookups(&tax, t0());
        facts.incident = Some(IncidentRef {
            id: 42,
            customer_id: Some(CUSTOMER),
            status: Status::InProgress,
        });
        facts.user = Some(UserFacts {
            id: 31,
            active: true,
            roles: Roles::new([Role::ServiceDesk, Role::L2Engineer]),
        });
        for (command, who) in steps {
            let Ok(outcome) = decide(&current, &who, command, &facts) else {
                continue;
            };
            let next = outcome.incident;
            prop_assert_eq!(next.user_reported, user_reported);
            if user_reported {
                prop_assert!(next.reporter.is_some());
            }
            if next.status == Status::Closed && current.status != Status::Closed {
                prop_assert!(who.roles.has(Role::ServiceDesk));
                if user_reported {
                    match next.closure_code {
                        Some(ClosureCode::Resolved | ClosureCode::Unresolved) => {
                            prop_assert!(next.user_confirmed_at.is_some())
                        }
                        Some(ClosureCode::Withdrawn) => {
                            prop_assert!(next.withdrawal_requested_at.is_some())
                        }
                        _ => {}
                    }
                }
            }
            current = next;
        }
    }
}
