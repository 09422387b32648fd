//! A step on a coordination ticket together with what it does to the ticket's incident, in
//! one transaction: resolving a ticket records its result on the incident (SPEC §6).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::incident_writes::WriteSettings;
use super::schema::incidents;
use crate::domain::coordination::{
    CoordinationStatus, CoordinationTicket, TicketCommand, resolution_comment,
};
use crate::domain::incident::Status;
use crate::domain::workflow::{Caller, IncidentCommand};

/// Runs `command` by `caller` on ticket `id`, checking `If-Match` after the decision. Resolving
/// the ticket records its result on the incident through the incident's own decision
/// (`coordination_resolved`, and a problem ticket's `change_ref`), unless the incident is
/// closed, and emits `coordination.resolved`.
pub fn execute(
    conn: &mut PgConnection,
    id: i64,
    expected_version: Option<i32>,
    caller: &Caller,
    command: TicketCommand,
    settings: &WriteSettings,
    now: DateTime<Utc>,
) -> Result<CoordinationTicket, StoreError> {
    let actor = caller
        .id
        .ok_or_else(|| StoreError::internal("a ticket is worked by a user"))?;
    conn.transaction(|conn| {
        let stored = super::coordination::step(
            conn,
            id,
            expected_version,
            actor,
            &caller.roles,
            command,
            now,
        )?;
        if stored.status != CoordinationStatus::Resolved {
            return Ok(stored);
        }
        // The incident's row lock: a close of the incident waits for this entry, or comes
        // first and is seen.
        let incident_status: String = incidents::table
            .find(stored.incident_id)
            .select(incidents::status)
            .for_update()
            .first(conn)?;
        // A closed incident never changes, its journal included.
        if incident_status != Status::Closed.as_str() {
            let record = IncidentCommand::RecordCoordination {
                comment: resolution_comment(&stored),
                change_ref: stored.change_ref.clone(),
            };
            super::incident_writes::execute(
                conn,
                stored.incident_id,
                None,
                caller,
                record,
                settings,
                now,
            )?;
        }
        super::coordination::emit_resolved(conn, &stored, actor, now)?;
        Ok(stored)
    })
}
