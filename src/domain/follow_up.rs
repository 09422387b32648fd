//! Follow-ups (回访, SPEC §9, procedure §4.7): after a user-reported incident is closed as
//! `resolved` or `unresolved`, the service desk calls the user back by `follow_up_due_at`. A
//! follow-up is a record beside the incident; the closed incident itself never changes.

use chrono::{DateTime, Utc};

use serde::Serialize;
use utoipa::ToSchema;

use super::incident::{Channel, Incident};
use super::role::{Role, Roles};
use super::state_machine::TransitionError;
use super::validation::FieldError;

/// A call-back as the service desk reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpReport {
    /// How the user was contacted.
    pub channel: Channel,
    /// Whether the user was reached.
    pub reached: bool,
    /// Satisfaction 1–5, when the user gave one.
    pub satisfaction: Option<i16>,
    /// What was said.
    pub comment: String,
}

/// A follow-up ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFollowUp {
    /// The incident.
    pub incident_id: i64,
    /// The report.
    pub report: FollowUpReport,
    /// Who called.
    pub performed_by: i64,
    /// When.
    pub performed_at: DateTime<Utc>,
    /// Performed by `follow_up_due_at` (事件回访的及时率 counts these).
    pub on_time: bool,
    /// This follow-up completes the incident's: the user was reached, or this was the last
    /// unreached attempt the desk owes (SPEC §9). The incident leaves the queue, and the
    /// measures count it once, in this follow-up's period, on time when this one is.
    pub completes: bool,
}

/// The follow-ups an incident had before this one.
/// A follow-up as recorded, as answers and `follow_up.created` events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = FollowUpResponse)]
#[schema(example = json!({"id": 1, "incident_id": 1, "channel": "phone", "reached": true, "satisfaction": 5, "comment": "用户对处理速度满意。", "performed_by": 2, "performed_at": "2026-12-07T09:15:00Z", "on_time": true}))]
pub struct FollowUp {
    /// Id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// How the user was contacted.
    pub channel: Channel,
    /// Whether the user was reached.
    pub reached: bool,
    /// Satisfaction 1–5, when given.
    pub satisfaction: Option<i16>,
    /// What was said.
    pub comment: String,
    /// Who called.
    pub performed_by: i64,
    /// When.
    pub performed_at: DateTime<Utc>,
    /// Performed by the incident's `follow_up_due_at`.
    pub on_time: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowUpProgress {
    /// One of them completed the incident's follow-up.
    pub completed: bool,
    /// How many did not reach the user.
    pub unreached: u32,
}

impl FollowUpProgress {
    /// Whether a follow-up that did or did not reach the user, after these, completes the
    /// incident's follow-up, when `max_attempts` unreached calls are all the desk owes.
    pub fn completed_by(self, reached: bool, max_attempts: u32) -> bool {
        !self.completed && (reached || self.unreached + 1 >= max_attempts)
    }
}

/// Why a follow-up cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowUpError {
    /// The incident owes no follow-up (yet): it is not closed, or it was not user-reported, or
    /// it was closed as a duplicate or withdrawn (409 `follow_up_not_due`).
    #[error(
        "incident {0} owes no follow-up: follow-ups are due once a user-reported incident is closed as resolved or unresolved"
    )]
    NotDue(i64),
    /// A refusal shared with incident writes (403, 422).
    #[error(transparent)]
    Refused(#[from] TransitionError),
}

/// Decides a follow-up of `incident` by a caller with `roles` (the service desk, SPEC §9).
pub fn record_follow_up(
    incident: &Incident,
    caller_id: i64,
    roles: &Roles,
    report: FollowUpReport,
    now: DateTime<Utc>,
    progress: FollowUpProgress,
    max_attempts: u32,
) -> Result<NewFollowUp, FollowUpError> {
    if !roles.has(Role::ServiceDesk) {
        return Err(TransitionError::Forbidden(
            "Follow-ups are recorded by the service desk.".into(),
        )
        .into());
    }
    let mut errors = Vec::new();
    if report.channel == Channel::Monitoring {
        errors.push(FieldError::new(
            "channel",
            "invalid",
            "a follow-up reaches a person: phone, web, email, onsite or other",
        ));
    }
    if report.satisfaction.is_some_and(|s| !(1..=5).contains(&s)) {
        errors.push(FieldError::new(
            "satisfaction",
            "range",
            "must be between 1 and 5",
        ));
    }
    if !errors.is_empty() {
        return Err(TransitionError::Invalid(errors).into());
    }
    let due = incident
        .follow_up_due_at
        .ok_or(FollowUpError::NotDue(incident.id))?;
    Ok(NewFollowUp {
        completes: progress.completed_by(report.reached, max_attempts),
        incident_id: incident.id,
        report,
        performed_by: caller_id,
        performed_at: now,
        on_time: now <= due,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn report() -> FollowUpReport {
        FollowUpReport {
            channel: Channel::Phone,
            reached: true,
            satisfaction: Some(5),
            comment: "用户满意".into(),
        }
    }

    fn incident(due: Option<DateTime<Utc>>) -> Incident {
        let mut json = serde_json::json!({
            "id": 9, "number": "INC-000009", "kind": "fault", "channel": "phone", "title": "t",
            "description": "", "customer_id": 1, "reporter": {"name": "王医生"},
            "source_system": null, "ci_id": null, "category": null, "subcategory": null,
            "level": "low", "affects_onsite_work": false, "affects_data_upload": false,
            "status": "closed", "tier": "l1", "assignee_id": null, "workaround": null,
            "workaround_applied": false, "solution": "s", "cause": "unknown",
            "subcause": "unclear_direct_fix", "due_at": "2026-03-02T09:00:00Z",
            "accepted_at": null, "resolved_at": "2026-03-02T02:00:00Z",
            "user_confirmed_at": "2026-03-02T03:00:00Z", "closed_at": "2026-03-02T04:00:00Z",
            "closed_by": 2, "closure_code": "resolved", "duplicate_of": null,
            "recurrence_of": null, "occurrences": 1, "last_occurrence_at": null,
            "dedup_key": null, "change_ref": null, "follow_up_due_at": due,
            "created_by": 2, "created_at": "2026-03-02T01:00:00Z",
            "updated_at": "2026-03-02T04:00:00Z", "version": 7
        });
        json["user_reported"] = true.into();
        serde_json::from_value(json).expect("an incident")
    }

    fn desk() -> Roles {
        Roles::new([Role::ServiceDesk])
    }

    #[test]
    fn a_follow_up_by_the_due_time_is_on_time_and_later_is_late() {
        let due = DateTime::parse_from_rfc3339("2026-03-05T04:00:00Z")
            .unwrap()
            .to_utc();
        let on_time = record_follow_up(
            &incident(Some(due)),
            2,
            &desk(),
            report(),
            due,
            FollowUpProgress::default(),
            3,
        )
        .unwrap();
        assert!(on_time.on_time);
        let late = due + Duration::seconds(1);
        let late = record_follow_up(
            &incident(Some(due)),
            2,
            &desk(),
            report(),
            late,
            FollowUpProgress::default(),
            3,
        )
        .unwrap();
        assert!(!late.on_time);
        assert_eq!(late.performed_by, 2);
    }

    #[test]
    fn only_the_service_desk_follows_up_and_only_when_one_is_due() {
        let now = Utc::now();
        let manager = Roles::new([Role::IncidentManager]);
        assert!(matches!(
            record_follow_up(
                &incident(Some(now)),
                2,
                &manager,
                report(),
                now,
                FollowUpProgress::default(),
                3
            ),
            Err(FollowUpError::Refused(TransitionError::Forbidden(_)))
        ));
        assert_eq!(
            record_follow_up(
                &incident(None),
                2,
                &desk(),
                report(),
                now,
                FollowUpProgress::default(),
                3
            ),
            Err(FollowUpError::NotDue(9))
        );
        let bad = FollowUpReport {
            channel: Channel::Monitoring,
            satisfaction: Some(6),
            ..report()
        };
        match record_follow_up(
            &incident(Some(now)),
            2,
            &desk(),
            bad,
            now,
            FollowUpProgress::default(),
            3,
        ) {
            Err(FollowUpError::Refused(TransitionError::Invalid(errors))) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, ["channel", "satisfaction"]);
            }
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn an_incident_is_followed_up_at_its_first_reached_call_or_its_last_owed_attempt() {
        let none = FollowUpProgress::default();
        assert!(none.completed_by(true, 3));
        assert!(!none.completed_by(false, 3));
        let two_missed = FollowUpProgress {
            completed: false,
            unreached: 2,
        };
        assert!(two_missed.completed_by(false, 3));
        assert!(!two_missed.completed_by(false, 4));
        assert!(none.completed_by(false, 1));
        // Once followed up, later calls are records only.
        let done = FollowUpProgress {
            completed: true,
            unreached: 0,
        };
        assert!(!done.completed_by(true, 3));
        let due = Utc::now();
        let missed = FollowUpReport {
            reached: false,
            satisfaction: None,
            ..report()
        };
        let first = record_follow_up(&incident(Some(due)), 2, &desk(), missed, due, none, 3);
        assert!(!first.unwrap().completes);
    }
}
