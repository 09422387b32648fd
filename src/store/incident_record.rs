//! What 《事件记录单》 (SPEC §9) prints beside the incident itself: the names behind its ids,
//! and, for staff, its escalations and follow-ups.

use std::collections::HashMap;

use diesel::prelude::*;

use super::StoreError;
use super::escalations::EscalationRow;
use super::follow_ups;
use super::schema::{configuration_items, customers, escalations, users};
use crate::domain::follow_up::FollowUp;
use crate::domain::incident::Incident;

/// The names and records a printed incident record needs.
#[derive(Debug, Default)]
pub struct RecordFacts {
    /// The customer's name.
    pub customer_name: Option<String>,
    /// The configuration item's name.
    pub ci_name: Option<String>,
    /// Display names of the users the incident and its records mention.
    pub user_names: HashMap<i64, String>,
    /// Escalations, oldest first (staff only; empty otherwise).
    pub escalations: Vec<EscalationRow>,
    /// Follow-ups, oldest first (staff only; empty otherwise).
    pub follow_ups: Vec<FollowUp>,
    /// The public attachments, oldest first (SPEC §13).
    pub attachments: Vec<crate::domain::attachment::Attachment>,
}

/// Loads what `incident`'s record prints; escalations and follow-ups only for `staff`, as their
/// own endpoints allow.
pub fn record_facts(
    conn: &mut PgConnection,
    incident: &Incident,
    staff: bool,
) -> Result<RecordFacts, StoreError> {
    let mut facts = RecordFacts::default();
    if let Some(id) = incident.customer_id {
        facts.customer_name = customers::table
            .find(id)
            .select(customers::name)
            .first(conn)
            .optional()?;
    }
    if let Some(id) = incident.ci_id {
        facts.ci_name = configuration_items::table
            .find(id)
            .select(configuration_items::name)
            .first(conn)
            .optional()?;
    }
    facts.attachments = super::attachments::public_of_incident(conn, incident.id)?;
    if staff {
        facts.escalations = escalations::table
            .filter(escalations::incident_id.eq(incident.id))
            .order(escalations::id.asc())
            .select(EscalationRow::as_select())
            .load(conn)?;
        facts.follow_ups = follow_ups::of_incident(conn, incident.id)?;
    }
    let mentioned: Vec<i64> = [
        Some(incident.created_by),
        incident.assignee_id,
        incident.closed_by,
    ]
    .into_iter()
    .flatten()
    .chain(facts.escalations.iter().filter_map(|e| e.created_by))
    .chain(facts.escalations.iter().filter_map(|e| e.to_assignee_id))
    .chain(facts.follow_ups.iter().map(|f| f.performed_by))
    .chain(facts.attachments.iter().map(|a| a.uploaded_by))
    .collect();
    facts.user_names = users::table
        .filter(users::id.eq_any(mentioned))
        .select((users::id, users::display_name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    Ok(facts)
}
