//! Coordination tickets (SPEC §6): each write one transaction with the ticket's own history
//! entry, the webhook event and, on resolving, the incident's `coordination_resolved` entry.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::schema::{coordination_ticket_history, coordination_tickets, incidents, users};
use super::{ChangesPage, ListPosition, check_version, outbox, parse_stored};
use crate::domain::changes::{FieldChange, json_diff};
use crate::domain::coordination::{
    AssigneeFacts, CoordinationKind, CoordinationStatus, CoordinationTicket, NewTicket,
    TicketCommand, TicketRequest, decide_ticket, open_ticket,
};
use crate::domain::incident::Status;
use crate::domain::role::Roles;

/// A stored ticket.
#[derive(Debug, Clone, Queryable, Selectable, AsChangeset)]
#[diesel(table_name = coordination_tickets, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
#[allow(missing_docs)]
pub struct TicketRow {
    pub id: i64,
    pub incident_id: i64,
    pub kind: String,
    pub status: String,
    pub assignee_id: i64,
    pub summary: String,
    pub details: String,
    pub analysis: Option<String>,
    pub process: Option<String>,
    pub result: Option<String>,
    pub root_cause: Option<String>,
    pub change_ref: Option<String>,
    pub cancel_reason: Option<String>,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl TryFrom<TicketRow> for CoordinationTicket {
    type Error = StoreError;

    fn try_from(row: TicketRow) -> Result<Self, StoreError> {
        Ok(CoordinationTicket {
            kind: parse_stored(&row.kind)?,
            status: parse_stored(&row.status)?,
            id: row.id,
            incident_id: row.incident_id,
            assignee_id: row.assignee_id,
            summary: row.summary,
            details: row.details,
            analysis: row.analysis,
            process: row.process,
            result: row.result,
            root_cause: row.root_cause,
            change_ref: row.change_ref,
            cancel_reason: row.cancel_reason,
            created_by: row.created_by,
            created_at: row.created_at,
            accepted_at: row.accepted_at,
            resolved_at: row.resolved_at,
            cancelled_at: row.cancelled_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

impl From<CoordinationTicket> for TicketRow {
    fn from(t: CoordinationTicket) -> Self {
        TicketRow {
            kind: t.kind.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            id: t.id,
            incident_id: t.incident_id,
            assignee_id: t.assignee_id,
            summary: t.summary,
            details: t.details,
            analysis: t.analysis,
            process: t.process,
            result: t.result,
            root_cause: t.root_cause,
            change_ref: t.change_ref,
            cancel_reason: t.cancel_reason,
            created_by: t.created_by,
            created_at: t.created_at,
            accepted_at: t.accepted_at,
            resolved_at: t.resolved_at,
            cancelled_at: t.cancelled_at,
            updated_at: t.updated_at,
            version: t.version,
        }
    }
}

/// Fields that are bookkeeping in a ticket's history.
const UNTRACKED: [&str; 5] = ["id", "incident_id", "created_at", "updated_at", "version"];

pub(super) fn record(
    conn: &mut PgConnection,
    ticket_id: i64,
    actor: i64,
    action: &str,
    changes: Vec<FieldChange>,
    comment: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let changes = serde_json::to_value(changes).map_err(StoreError::internal)?;
    diesel::insert_into(coordination_ticket_history::table)
        .values((
            coordination_ticket_history::ticket_id.eq(ticket_id),
            coordination_ticket_history::actor_id.eq(actor),
            coordination_ticket_history::action.eq(action),
            coordination_ticket_history::changes.eq(changes),
            coordination_ticket_history::comment.eq(comment),
            coordination_ticket_history::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

fn emit(
    conn: &mut PgConnection,
    event: &str,
    ticket: &CoordinationTicket,
    actor: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let data = serde_json::json!({ "coordination_ticket": ticket });
    // The ticket's customer is its incident's, for the webhooks limited to one customer.
    let customer_id: Option<i64> = incidents::table
        .find(ticket.incident_id)
        .select(incidents::customer_id)
        .first(conn)?;
    let event = outbox::Event {
        event_type: event,
        customer_id,
        actor_id: Some(actor),
    };
    outbox::emit(conn, event, now, data).map(|_| ())
}

/// Opens a ticket on incident `incident_id` by `caller` with `roles`: locks the incident, so a
/// resolve racing with it sees the ticket or runs before it.
pub fn create(
    conn: &mut PgConnection,
    incident_id: i64,
    caller: i64,
    roles: &Roles,
    request: TicketRequest,
    now: DateTime<Utc>,
) -> Result<CoordinationTicket, StoreError> {
    conn.transaction(|conn| {
        let status: String = incidents::table
            .find(incident_id)
            .select(incidents::status)
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("incident", incident_id))?;
        let status: Status = parse_stored(&status)?;
        let assignee = users::table
            .find(request.assignee_id)
            .select((users::id, users::active, users::roles))
            .first::<(i64, bool, Vec<String>)>(conn)
            .optional()?
            .map(|(id, active, roles)| {
                Ok::<_, StoreError>(AssigneeFacts {
                    id,
                    active,
                    roles: Roles::parse(&roles).map_err(StoreError::internal)?,
                })
            })
            .transpose()?;
        let new: NewTicket =
            open_ticket(incident_id, status, caller, roles, request, assignee, now)?;
        let row: TicketRow = diesel::insert_into(coordination_tickets::table)
            .values((
                coordination_tickets::incident_id.eq(new.incident_id),
                coordination_tickets::kind.eq(new.kind.as_str()),
                coordination_tickets::status.eq(CoordinationStatus::Open.as_str()),
                coordination_tickets::assignee_id.eq(new.assignee_id),
                coordination_tickets::summary.eq(&new.summary),
                coordination_tickets::details.eq(&new.details),
                coordination_tickets::created_by.eq(new.created_by),
                coordination_tickets::created_at.eq(now),
                coordination_tickets::updated_at.eq(now),
            ))
            .returning(TicketRow::as_returning())
            .get_result(conn)?;
        let ticket = CoordinationTicket::try_from(row)?;
        let changes = json_diff(None, &ticket, &UNTRACKED);
        record(conn, ticket.id, caller, "created", changes, None, now)?;
        emit(conn, "coordination.created", &ticket, caller, now)?;
        Ok(ticket)
    })
}

/// Runs `command` by `caller` (with `roles`) on ticket `id`, checking `If-Match` after the
/// decision: the ticket and its history entry, in the caller's transaction. What a resolved
/// ticket does to its incident is `ticket_steps`'.
pub(super) fn step(
    conn: &mut PgConnection,
    id: i64,
    expected_version: Option<i32>,
    caller: i64,
    roles: &Roles,
    command: TicketCommand,
    now: DateTime<Utc>,
) -> Result<CoordinationTicket, StoreError> {
    let current = locked(conn, id)?;
    apply(conn, current, expected_version, caller, roles, command, now)
}

/// Emits `coordination.resolved` for `ticket`.
pub(super) fn emit_resolved(
    conn: &mut PgConnection,
    ticket: &CoordinationTicket,
    actor: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    emit(conn, "coordination.resolved", ticket, actor, now)
}

fn locked(conn: &mut PgConnection, id: i64) -> Result<CoordinationTicket, StoreError> {
    coordination_tickets::table
        .find(id)
        .select(TicketRow::as_select())
        .for_update()
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("coordination ticket", id))?
        .try_into()
}

/// Decides `command` on `current`, writes the ticket and its history entry.
fn apply(
    conn: &mut PgConnection,
    current: CoordinationTicket,
    expected_version: Option<i32>,
    caller: i64,
    roles: &Roles,
    command: TicketCommand,
    now: DateTime<Utc>,
) -> Result<CoordinationTicket, StoreError> {
    let action = command.action();
    let next = decide_ticket(&current, caller, roles, command, now)?;
    check_version(expected_version, current.version)?;
    let stored: CoordinationTicket = diesel::update(coordination_tickets::table.find(current.id))
        .set(&TicketRow::from(next))
        .returning(TicketRow::as_returning())
        .get_result::<TicketRow>(conn)?
        .try_into()?;
    let changes = json_diff(Some(&current), &stored, &UNTRACKED);
    let comment = stored
        .cancel_reason
        .clone()
        .filter(|_| stored.status == CoordinationStatus::Cancelled);
    record(
        conn,
        current.id,
        caller,
        action.as_str(),
        changes,
        comment,
        now,
    )?;
    Ok(stored)
}

/// Cancels the open or accepted tickets of incident `incident_id`, which `caller` has just
/// closed (SPEC §6), in the caller's transaction. Returns how many were cancelled.
pub(super) fn cancel_for_closure(
    conn: &mut PgConnection,
    incident_id: i64,
    caller: i64,
    roles: &Roles,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let open: &'static str = CoordinationStatus::Open.as_str();
    let accepted: &'static str = CoordinationStatus::Accepted.as_str();
    let rows: Vec<TicketRow> = coordination_tickets::table
        .filter(coordination_tickets::incident_id.eq(incident_id))
        .filter(
            coordination_tickets::status
                .eq(open)
                .or(coordination_tickets::status.eq(accepted)),
        )
        .select(TicketRow::as_select())
        .order(coordination_tickets::id.asc())
        .for_update()
        .load(conn)?;
    let count = rows.len();
    for row in rows {
        let command = TicketCommand::CancelForClosure {
            reason: reason.to_owned(),
        };
        apply(conn, row.try_into()?, None, caller, roles, command, now)?;
    }
    Ok(count)
}

/// Ticket `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> Result<CoordinationTicket, StoreError> {
    coordination_tickets::table
        .find(id)
        .select(TicketRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("coordination ticket", id))?
        .try_into()
}

/// The open or accepted `customer_issue` tickets: those that keep their incident from being
/// resolved (`CoordinationTicket::blocks_resolving`).
///
/// The two statuses are compared one by one rather than with `eq_any`: a query holding
/// `eq_any` has no static query id, so Diesel writes its SQL text again at every execution to
/// find the prepared statement. That was a quarter of the instructions of `GET /incidents/{id}`.
#[diesel::dsl::auto_type(no_type_alias)]
pub(super) fn blocking_tickets() -> _ {
    let kind: &'static str = CoordinationKind::CustomerIssue.as_str();
    let open: &'static str = CoordinationStatus::Open.as_str();
    let accepted: &'static str = CoordinationStatus::Accepted.as_str();
    coordination_tickets::table
        .filter(coordination_tickets::kind.eq(kind))
        .filter(
            coordination_tickets::status
                .eq(open)
                .or(coordination_tickets::status.eq(accepted)),
        )
}

/// True while incident `incident_id` has an open or accepted `customer_issue` ticket.
pub fn blocks_resolving(conn: &mut PgConnection, incident_id: i64) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        blocking_tickets().filter(coordination_tickets::incident_id.eq(incident_id)),
    ))
    .get_result(conn)?)
}

/// Which of `ids` have an open or accepted `customer_issue` ticket (for `allowed_actions`).
pub fn blocking_among(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<std::collections::HashSet<i64>, StoreError> {
    Ok(blocking_tickets()
        .filter(coordination_tickets::incident_id.eq_any(ids))
        .select(coordination_tickets::incident_id)
        .distinct()
        .load::<i64>(conn)?
        .into_iter()
        .collect())
}

/// Filters of the ticket queues.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct TicketFilter {
    pub assignee_id: Option<i64>,
    pub status: Option<CoordinationStatus>,
    pub kind: Option<CoordinationKind>,
    pub incident_id: Option<i64>,
}

/// One page of tickets, oldest first or least recently changed first.
pub fn list(
    conn: &mut PgConnection,
    filter: &TicketFilter,
    page: ChangesPage,
) -> Result<(Vec<CoordinationTicket>, Option<ListPosition>), StoreError> {
    use coordination_tickets::dsl as t;
    let mut query = coordination_tickets::table
        .select(TicketRow::as_select())
        .into_boxed();
    if let Some(assignee) = filter.assignee_id {
        query = query.filter(coordination_tickets::assignee_id.eq(assignee));
    }
    if let Some(status) = filter.status {
        query = query.filter(coordination_tickets::status.eq(status.as_str()));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(coordination_tickets::kind.eq(kind.as_str()));
    }
    if let Some(incident) = filter.incident_id {
        query = query.filter(coordination_tickets::incident_id.eq(incident));
    }
    if let Some(since) = page.updated_since {
        query = query.filter(t::updated_at.ge(since));
    }
    query = match page.after {
        ListPosition::Id(after) => {
            if let Some(after) = after {
                query = query.filter(t::id.gt(after));
            }
            query.order(t::id.asc())
        }
        ListPosition::Changed(after) => {
            if let Some((at, id)) = after {
                query = query.filter(
                    t::updated_at
                        .gt(at)
                        .or(t::updated_at.eq(at).and(t::id.gt(id))),
                );
            }
            query.order((t::updated_at.asc(), t::id.asc()))
        }
    };
    let rows: Vec<TicketRow> = query.limit(page.limit + 1).load(conn)?;
    let (rows, next) = page.split(rows, |row| (row.updated_at, row.id));
    let tickets = rows
        .into_iter()
        .map(CoordinationTicket::try_from)
        .collect::<Result<_, _>>()?;
    Ok((tickets, next))
}

/// An entry of a ticket's history.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = coordination_ticket_history, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct TicketHistoryRow {
    pub id: i64,
    pub ticket_id: i64,
    pub actor_id: Option<i64>,
    pub action: String,
    pub changes: serde_json::Value,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TicketHistoryRow {
    /// The recorded field changes.
    pub fn field_changes(&self) -> Vec<FieldChange> {
        serde_json::from_value(self.changes.clone()).unwrap_or_default()
    }
}

/// Ticket `id`'s history, oldest first (404 for no such ticket).
pub fn history(conn: &mut PgConnection, id: i64) -> Result<Vec<TicketHistoryRow>, StoreError> {
    find(conn, id)?;
    Ok(coordination_ticket_history::table
        .filter(coordination_ticket_history::ticket_id.eq(id))
        .order(coordination_ticket_history::id.asc())
        .select(TicketHistoryRow::as_select())
        .load(conn)?)
}
