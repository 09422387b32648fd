//! What a decision brings besides the incident's new fields: the webhook events that announce
//! it, and the knowledge entry whose use it counts.

use super::*;

#[test]
fn resolving_with_a_published_entry_counts_its_use_once() {
    let tax = taxonomy();
    let mut working = incident(Status::InProgress);
    working.assignee_id = Some(10);
    let resolve = |entry: Option<i64>| {
        IncidentCommand::Resolve(Resolution {
            solution: "按知识库条目处理".into(),
            cause: "unknown".into(),
            subcause: "unclear_direct_fix".into(),
            category: None,
            subcategory: Some("query_inaccurate".into()),
            knowledge_entry_id: entry,
        })
    };
    let mut with_entry = lookups(&tax, t0());
    with_entry.knowledge_entry = Some((7, true));
    let solved = decide(&working, &desk(), resolve(Some(7)), &with_entry).unwrap();
    assert_eq!(solved.incident.knowledge_entry_id, Some(7));
    assert_eq!(solved.knowledge_used, Some(7));
    let without = decide(&working, &desk(), resolve(None), &lookups(&tax, t0())).unwrap();
    assert_eq!(without.knowledge_used, None);
    // Resolved again with the entry that solved it before: the use is not counted twice.
    let mut again = working.clone();
    again.knowledge_entry_id = Some(7);
    let repeated = decide(&again, &desk(), resolve(Some(7)), &with_entry).unwrap();
    assert_eq!(repeated.knowledge_used, None);
}

#[test]
fn each_step_of_the_procedure_announces_itself() {
    let tax = taxonomy();
    let reporter = caller(30, &[Role::Customer], Some(CUSTOMER));
    let events = |current: Incident, who: &Caller, command: IncidentCommand| {
        decide(&current, who, command, &lookups(&tax, t0()))
            .unwrap()
            .events
    };
    assert_eq!(
        events(
            incident(Status::New),
            &desk(),
            IncidentCommand::Accept { assignee_id: None }
        ),
        [IncidentEvent::Accepted]
    );
    assert_eq!(
        events(
            incident(Status::New),
            &desk(),
            IncidentCommand::AddNote {
                visibility: NoteVisibility::Internal,
                body: "查日志".into(),
                attachment_ids: vec![],
            }
        ),
        [IncidentEvent::NoteCreated]
    );
    let retitle = IncidentCommand::Edit(IncidentEdit {
        title: Some("收费模块无法录入（门诊）".into()),
        ..IncidentEdit::default()
    });
    assert_eq!(
        events(incident(Status::New), &desk(), retitle),
        [IncidentEvent::Updated]
    );
    assert_eq!(
        events(
            incident(Status::Resolved),
            &reporter,
            IncidentCommand::Confirm { channel: None }
        ),
        [IncidentEvent::Confirmed]
    );
    assert_eq!(
        events(
            incident(Status::Resolved),
            &reporter,
            IncidentCommand::RejectResolution {
                reason: "还是不行".into(),
                channel: None,
            }
        ),
        [IncidentEvent::ResolutionRejected]
    );
    assert_eq!(
        events(
            incident(Status::New),
            &reporter,
            IncidentCommand::Withdraw {
                channel: None,
                note: None
            }
        ),
        [IncidentEvent::Withdrawn]
    );
}
