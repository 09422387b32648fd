//! Decisions on known incidents, callers and facts: the fixtures, and the tests by concern.

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
        user_reported: true,
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
        withdrawal_requested_at: None,
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
        knowledge_entry_id: None,
        created_by: 2,
        created_at: t0(),
        updated_at: t0(),
        version: 1,
        links: vec![],
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
        knowledge_entry: None,
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

mod creation;
mod decisions;
mod intake;
mod outcomes;
mod properties;
