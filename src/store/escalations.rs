//! Escalation records (SPEC §5) and the incident managers' queue.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::schema::escalations;
use super::{PageRequest, parse_stored, split_page};
use crate::domain::escalation::{Escalation, EscalationKind, EscalationRecord};

/// A stored escalation.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = escalations, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct EscalationRow {
    pub id: i64,
    pub incident_id: i64,
    pub kind: String,
    pub trigger: Option<String>,
    pub reason: Option<String>,
    pub from_tier: String,
    pub to_tier: String,
    pub from_level: String,
    pub to_level: String,
    pub from_assignee_id: Option<i64>,
    pub to_assignee_id: Option<i64>,
    pub due_at: Option<DateTime<Utc>>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub acknowledged_by: Option<i64>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

impl TryFrom<EscalationRow> for Escalation {
    type Error = StoreError;

    fn try_from(row: EscalationRow) -> Result<Self, StoreError> {
        Ok(Escalation {
            kind: parse_stored(&row.kind)?,
            trigger: row.trigger.as_deref().map(parse_stored).transpose()?,
            from_tier: parse_stored(&row.from_tier)?,
            to_tier: parse_stored(&row.to_tier)?,
            from_level: parse_stored(&row.from_level)?,
            to_level: parse_stored(&row.to_level)?,
            id: row.id,
            incident_id: row.incident_id,
            reason: row.reason,
            from_assignee_id: row.from_assignee_id,
            to_assignee_id: row.to_assignee_id,
            due_at: row.due_at,
            created_by: row.created_by,
            created_at: row.created_at,
            acknowledged_by: row.acknowledged_by,
            acknowledged_at: row.acknowledged_at,
        })
    }
}

/// Records `record` for incident `incident_id` unless the same SLA escalation (incident,
/// trigger, deadline) exists already; returns it when recorded.
pub fn insert_once(
    conn: &mut PgConnection,
    incident_id: i64,
    record: &EscalationRecord,
) -> Result<Option<EscalationRow>, StoreError> {
    use escalations::dsl as e;
    Ok(diesel::insert_into(escalations::table)
        .values((
            e::incident_id.eq(incident_id),
            e::kind.eq(record.kind.as_str()),
            e::trigger.eq(record.trigger.map(|t| t.as_str())),
            e::reason.eq(&record.reason),
            e::from_tier.eq(record.from_tier.as_str()),
            e::to_tier.eq(record.to_tier.as_str()),
            e::from_level.eq(record.from_level.as_str()),
            e::to_level.eq(record.to_level.as_str()),
            e::from_assignee_id.eq(record.from_assignee_id),
            e::to_assignee_id.eq(record.to_assignee_id),
            e::due_at.eq(record.due_at),
            e::created_by.eq(record.created_by),
            e::created_at.eq(record.created_at),
        ))
        .on_conflict_do_nothing()
        .returning(EscalationRow::as_returning())
        .get_result(conn)
        .optional()?)
}

/// Filters of the escalation queue.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct EscalationFilter {
    pub kind: Option<EscalationKind>,
    pub acknowledged: Option<bool>,
    pub incident_id: Option<i64>,
}

/// One page of escalations, oldest first.
pub fn list(
    conn: &mut PgConnection,
    filter: &EscalationFilter,
    page: PageRequest,
) -> Result<(Vec<Escalation>, Option<i64>), StoreError> {
    let mut query = escalations::table
        .select(EscalationRow::as_select())
        .into_boxed();
    if let Some(kind) = &filter.kind {
        query = query.filter(escalations::kind.eq(kind.as_str()));
    }
    match filter.acknowledged {
        Some(true) => query = query.filter(escalations::acknowledged_at.is_not_null()),
        Some(false) => query = query.filter(escalations::acknowledged_at.is_null()),
        None => {}
    }
    if let Some(incident_id) = filter.incident_id {
        query = query.filter(escalations::incident_id.eq(incident_id));
    }
    if let Some(after) = page.after {
        query = query.filter(escalations::id.gt(after));
    }
    let rows: Vec<EscalationRow> = query
        .order(escalations::id.asc())
        .limit(page.limit + 1)
        .load(conn)?;
    let (rows, next) = split_page(rows, page, |row| row.id);
    let escalations = rows
        .into_iter()
        .map(Escalation::try_from)
        .collect::<Result<_, _>>()?;
    Ok((escalations, next))
}

/// Marks escalation `id` acknowledged; 409 when it already is.
pub fn acknowledge(
    conn: &mut PgConnection,
    id: i64,
    actor_id: i64,
    now: DateTime<Utc>,
) -> Result<Escalation, StoreError> {
    conn.transaction(|conn| {
        let current: EscalationRow = escalations::table
            .find(id)
            .select(EscalationRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("escalation", id))?;
        if current.acknowledged_at.is_some() {
            return Err(StoreError::Conflict {
                code: "already_acknowledged",
                detail: format!("Escalation {id} was acknowledged already."),
            });
        }
        diesel::update(escalations::table.find(id))
            .set((
                escalations::acknowledged_by.eq(actor_id),
                escalations::acknowledged_at.eq(now),
            ))
            .returning(EscalationRow::as_returning())
            .get_result::<EscalationRow>(conn)?
            .try_into()
    })
}
