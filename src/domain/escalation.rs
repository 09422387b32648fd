//! Escalations (SPEC §5, procedure §4.8.2): their kinds, triggers and the record each one leaves.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::incident::{Incident, Tier, UnknownCode, text_codes};
use super::level::Level;

text_codes!(
    /// Kinds of escalation.
    EscalationKind, "escalation kind" {
        /// L1 → L2.
        Functional => "functional",
        /// Level change.
        Priority => "priority",
        /// To the incident managers.
        Hierarchical => "hierarchical",
    }
);

text_codes!(
    /// Why a priority escalation happened.
    PriorityTrigger, "trigger" {
        /// On-site work is held up.
        OnsiteUrgent => "onsite_urgent",
        /// The data upload is held up.
        DataUpload => "data_upload",
        /// A person decided.
        Manual => "manual",
    }
);

text_codes!(
    /// Which deadline threshold the SLA watcher escalates for.
    SlaTrigger, "trigger" {
        /// The warning share of the time to the deadline has passed.
        SlaWarning => "sla_warning",
        /// The deadline has passed.
        SlaBreach => "sla_breach",
    }
);

/// What set an escalation off: a priority trigger or an SLA threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationTrigger {
    /// A priority escalation's trigger.
    Priority(PriorityTrigger),
    /// The SLA watcher's threshold.
    Sla(SlaTrigger),
}

impl EscalationTrigger {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationTrigger::Priority(trigger) => trigger.as_str(),
            EscalationTrigger::Sla(trigger) => trigger.as_str(),
        }
    }
}

impl fmt::Display for EscalationTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EscalationTrigger {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<PriorityTrigger>()
            .map(EscalationTrigger::Priority)
            .or_else(|_| s.parse::<SlaTrigger>().map(EscalationTrigger::Sla))
    }
}

/// An escalation as recorded: the incident's tier, level and assignee before and after.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct EscalationRecord {
    pub kind: EscalationKind,
    pub trigger: Option<EscalationTrigger>,
    /// The reason, or the diagnosis of a functional escalation.
    pub reason: Option<String>,
    pub from_tier: Tier,
    pub to_tier: Tier,
    pub from_level: Level,
    pub to_level: Level,
    pub from_assignee_id: Option<i64>,
    pub to_assignee_id: Option<i64>,
    /// The incident's deadline once the escalation took effect: the new one after a priority
    /// escalation, the one an SLA escalation is about (one per trigger and deadline).
    pub due_at: Option<DateTime<Utc>>,
    /// `None` for the SLA watcher.
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl EscalationRecord {
    /// The record of an escalation that took the incident from `before` to `after`.
    pub fn between(
        before: &Incident,
        after: &Incident,
        kind: EscalationKind,
        trigger: Option<EscalationTrigger>,
        reason: String,
        created_by: Option<i64>,
        now: DateTime<Utc>,
    ) -> Self {
        EscalationRecord {
            kind,
            trigger,
            reason: Some(reason),
            from_tier: before.tier,
            to_tier: after.tier,
            from_level: before.level,
            to_level: after.level,
            from_assignee_id: before.assignee_id,
            to_assignee_id: after.assignee_id,
            due_at: Some(after.due_at),
            created_by,
            created_at: now,
        }
    }
}

/// An escalation record.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = EscalationResponse)]
#[schema(example = json!({"id": 1, "incident_id": 2, "kind": "hierarchical", "trigger": null, "reason": "收费窗口排队超过 30 人，请事件经理协调资源。", "from_tier": "l1", "to_tier": "l1", "from_level": "high", "to_level": "high", "from_assignee_id": 2, "to_assignee_id": 2, "due_at": null, "created_by": 2, "created_at": "2026-12-07T09:15:00Z", "acknowledged_by": null, "acknowledged_at": null}))]
pub struct Escalation {
    /// Id.
    pub id: i64,
    /// Incident.
    pub incident_id: i64,
    /// Kind.
    pub kind: EscalationKind,
    /// `onsite_urgent`, `data_upload`, `manual`, `sla_warning` or `sla_breach`.
    #[serde(serialize_with = "serialize_trigger")]
    #[schema(value_type = Option<String>, example = "manual")]
    pub trigger: Option<EscalationTrigger>,
    /// Reason, or the diagnosis of a functional escalation.
    pub reason: Option<String>,
    /// Tier before.
    pub from_tier: Tier,
    /// Tier after.
    pub to_tier: Tier,
    /// Level before.
    pub from_level: Level,
    /// Level after.
    pub to_level: Level,
    /// Assignee before.
    pub from_assignee_id: Option<i64>,
    /// Assignee after.
    pub to_assignee_id: Option<i64>,
    /// The incident's deadline once the escalation took effect: the new one after a priority
    /// escalation, the one an SLA escalation is about.
    pub due_at: Option<DateTime<Utc>>,
    /// Who escalated; `null` for the SLA watcher.
    pub created_by: Option<i64>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Incident manager who acknowledged it.
    pub acknowledged_by: Option<i64>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
}

fn serialize_trigger<S: serde::Serializer>(
    trigger: &Option<EscalationTrigger>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match trigger {
        Some(trigger) => serializer.serialize_str(trigger.as_str()),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_parse_from_either_family() {
        assert_eq!(
            "data_upload".parse::<EscalationTrigger>(),
            Ok(EscalationTrigger::Priority(PriorityTrigger::DataUpload))
        );
        assert_eq!(
            "sla_breach".parse::<EscalationTrigger>(),
            Ok(EscalationTrigger::Sla(SlaTrigger::SlaBreach))
        );
        assert!("later".parse::<EscalationTrigger>().is_err());
        assert_eq!(EscalationKind::Hierarchical.as_str(), "hierarchical");
    }
}
