//! What one closed incident adds to the statistics of its month (SPEC §9): one row per table,
//! the deadline rule and the time to resolve. The store adds these rows to its monthly summaries
//! in the closing transaction and recomputes them with the same functions on a rebuild.

use chrono::{DateTime, Utc};

use super::super::escalation::EscalationKind;
use super::super::incident::{ClosureCode, Incident};

/// A table of the statistics report, as its maintained monthly rows are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// Category and subcategory.
    Category,
    /// Cause and sub-cause.
    Cause,
    /// Level (with the deadlines missed).
    Level,
    /// Channel.
    Channel,
    /// Customer id.
    Customer,
    /// The tier of an incident closed as `resolved`.
    ResolvingTier,
    /// Closure code.
    ClosureCode,
    /// Escalations by kind.
    Escalation,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 8] = [
        Dimension::Category,
        Dimension::Cause,
        Dimension::Level,
        Dimension::Channel,
        Dimension::Customer,
        Dimension::ResolvingTier,
        Dimension::ClosureCode,
        Dimension::Escalation,
    ];

    /// The stable code stored with the row.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Category => "category",
            Dimension::Cause => "cause",
            Dimension::Level => "level",
            Dimension::Channel => "channel",
            Dimension::Customer => "customer",
            Dimension::ResolvingTier => "resolving_tier",
            Dimension::ClosureCode => "closure_code",
            Dimension::Escalation => "escalation",
        }
    }
}

/// What one closed incident adds to one table of its month.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatisticsRow {
    /// The table.
    pub dimension: Dimension,
    /// The code; `None` where the incident had none.
    pub code: Option<String>,
    /// The inner code of a pair.
    pub subcode: Option<String>,
    /// Incidents (escalations in [`Dimension::Escalation`]).
    pub count: i64,
    /// Of those, closed after their deadline ([`Dimension::Level`] only).
    pub breached: i64,
}

impl StatisticsRow {
    fn one(dimension: Dimension, code: Option<&str>, subcode: Option<&str>) -> Self {
        StatisticsRow {
            dimension,
            code: code.map(str::to_owned),
            subcode: subcode.map(str::to_owned),
            count: 1,
            breached: 0,
        }
    }
}

/// Missed its deadline: resolved, or never resolved and closed, after `due_at` (the rule of the
/// incident list's `sla_breached` for a closed incident).
pub fn breached(incident: &Incident) -> bool {
    incident
        .resolved_at
        .or(incident.closed_at)
        .is_some_and(|at| at > incident.due_at)
}

/// What closing `incident`, with escalations of `escalation_kinds`, adds to the statistics of
/// the month it closed in: one row per table.
pub fn closure_rows(
    incident: &Incident,
    escalation_kinds: &[EscalationKind],
) -> Vec<StatisticsRow> {
    let i = incident;
    let customer = i.customer_id.map(|id| id.to_string());
    let mut rows = vec![
        StatisticsRow::one(
            Dimension::Category,
            i.category.as_deref(),
            i.subcategory.as_deref(),
        ),
        StatisticsRow::one(Dimension::Cause, i.cause.as_deref(), i.subcause.as_deref()),
        StatisticsRow {
            breached: i64::from(breached(i)),
            ..StatisticsRow::one(Dimension::Level, Some(i.level.as_str()), None)
        },
        StatisticsRow::one(Dimension::Channel, Some(i.channel.as_str()), None),
        StatisticsRow::one(Dimension::Customer, customer.as_deref(), None),
        StatisticsRow::one(
            Dimension::ClosureCode,
            i.closure_code.map(ClosureCode::as_str),
            None,
        ),
    ];
    if i.closure_code == Some(ClosureCode::Resolved) {
        rows.push(StatisticsRow::one(
            Dimension::ResolvingTier,
            Some(i.tier.as_str()),
            None,
        ));
    }
    for kind in EscalationKind::ALL {
        let count = escalation_kinds.iter().filter(|k| *k == kind).count() as i64;
        if count > 0 {
            rows.push(StatisticsRow {
                count,
                ..StatisticsRow::one(Dimension::Escalation, Some(kind.as_str()), None)
            });
        }
    }
    rows
}

/// Minutes from recording to resolution, for incidents with a resolution that are not
/// duplicates (the report's time to resolve).
pub fn resolve_minutes(incident: &Incident) -> Option<f64> {
    if incident.closure_code == Some(ClosureCode::Duplicate) {
        return None;
    }
    incident
        .resolved_at
        .map(|at| (at - incident.created_at).num_milliseconds() as f64 / 60_000.0)
}

/// Minutes from recording to the first response (SPEC §9: the first of accepted, escalated by a
/// person, or resolved), for incidents that are not duplicates; `first_escalated_at` is the
/// earliest escalation a person raised.
pub fn first_response_minutes(
    incident: &Incident,
    first_escalated_at: Option<DateTime<Utc>>,
) -> Option<f64> {
    if incident.closure_code == Some(ClosureCode::Duplicate) {
        return None;
    }
    [
        incident.accepted_at,
        first_escalated_at,
        incident.resolved_at,
    ]
    .into_iter()
    .flatten()
    .min()
    .map(|at| (at - incident.created_at).num_milliseconds() as f64 / 60_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closure_adds_one_row_per_table_and_its_escalations() {
        let mut incident = crate::domain::incident::fixtures::closed_incident();
        let rows = closure_rows(
            &incident,
            &[EscalationKind::Functional, EscalationKind::Functional],
        );
        let find = |d: Dimension| rows.iter().find(|r| r.dimension == d).unwrap();
        assert_eq!(
            find(Dimension::Category).subcode.as_deref(),
            Some("module_input_blocked")
        );
        assert_eq!(find(Dimension::Level).breached, 0);
        assert_eq!(find(Dimension::ResolvingTier).code.as_deref(), Some("l2"));
        assert_eq!(find(Dimension::Customer).code.as_deref(), Some("1"));
        assert_eq!(find(Dimension::Escalation).count, 2);
        assert_eq!(resolve_minutes(&incident), Some(60.0));
        // Accepted ten minutes in; an escalation five minutes in came first.
        assert_eq!(first_response_minutes(&incident, None), Some(10.0));
        let escalated = incident.created_at + chrono::Duration::minutes(5);
        assert_eq!(
            first_response_minutes(&incident, Some(escalated)),
            Some(5.0)
        );

        incident.resolved_at = Some(incident.due_at + chrono::Duration::seconds(1));
        incident.closure_code = Some(ClosureCode::Unresolved);
        let rows = closure_rows(&incident, &[]);
        assert!(rows.iter().all(|r| r.dimension != Dimension::ResolvingTier));
        assert!(rows.iter().all(|r| r.dimension != Dimension::Escalation));
        let level = rows
            .iter()
            .find(|r| r.dimension == Dimension::Level)
            .unwrap();
        assert_eq!(level.breached, 1);

        // Never resolved, closed after the deadline: breached; a duplicate has no resolve time.
        incident.resolved_at = None;
        incident.closure_code = Some(ClosureCode::Duplicate);
        assert!(breached(&incident));
        assert_eq!(resolve_minutes(&incident), None);
        assert_eq!(first_response_minutes(&incident, Some(escalated)), None);
    }
}
