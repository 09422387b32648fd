//! Incidents, their history and notes: reading, and converting stored rows into the domain's
//! [`Incident`] (the only place that parses stored codes). Writes are in `incident_writes`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::parse_stored;
use super::schema::{incident_history, incident_notes, incidents};
use crate::domain::changes::FieldChange;
use crate::domain::incident::{Incident, Link, Note, Reporter};
use crate::domain::level::Level;
use crate::domain::workflow::{DuplicateSignature, IncidentRef, NewIncident};

/// A stored incident.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, AsChangeset, Insertable)]
#[diesel(table_name = incidents, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
#[diesel(treat_none_as_default_value = false)]
#[allow(missing_docs)]
pub struct IncidentRow {
    pub id: i64,
    #[diesel(skip_update, skip_insertion)]
    pub number: String,
    pub kind: String,
    pub channel: String,
    pub title: String,
    pub description: String,
    pub customer_id: Option<i64>,
    pub reporter: Option<serde_json::Value>,
    pub user_reported: bool,
    pub source_system: Option<String>,
    pub ci_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub level: String,
    #[diesel(skip_update, skip_insertion)]
    pub level_rank: i16,
    pub affects_onsite_work: bool,
    pub affects_data_upload: bool,
    pub status: String,
    pub tier: String,
    pub assignee_id: Option<i64>,
    pub workaround: Option<String>,
    pub workaround_applied: bool,
    pub solution: Option<String>,
    pub cause: Option<String>,
    pub subcause: Option<String>,
    pub due_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub user_confirmed_at: Option<DateTime<Utc>>,
    pub withdrawal_requested_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<i64>,
    pub closure_code: Option<String>,
    pub duplicate_of: Option<i64>,
    pub recurrence_of: Option<i64>,
    pub occurrences: i32,
    pub last_occurrence_at: Option<DateTime<Utc>>,
    pub dedup_key: Option<String>,
    pub change_ref: Option<String>,
    pub follow_up_due_at: Option<DateTime<Utc>>,
    pub knowledge_entry_id: Option<i64>,
    #[diesel(skip_update)]
    pub created_by: i64,
    #[diesel(skip_update)]
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
    pub links: serde_json::Value,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = StoreError;

    fn try_from(row: IncidentRow) -> Result<Self, StoreError> {
        Ok(Incident {
            kind: parse_stored(&row.kind)?,
            channel: parse_stored(&row.channel)?,
            level: parse_stored(&row.level)?,
            status: parse_stored(&row.status)?,
            tier: parse_stored(&row.tier)?,
            closure_code: row.closure_code.as_deref().map(parse_stored).transpose()?,
            reporter: row
                .reporter
                .map(serde_json::from_value::<Reporter>)
                .transpose()
                .map_err(StoreError::internal)?,
            id: row.id,
            number: row.number,
            title: row.title,
            description: row.description,
            customer_id: row.customer_id,
            source_system: row.source_system,
            ci_id: row.ci_id,
            category: row.category,
            subcategory: row.subcategory,
            affects_onsite_work: row.affects_onsite_work,
            affects_data_upload: row.affects_data_upload,
            assignee_id: row.assignee_id,
            workaround: row.workaround,
            workaround_applied: row.workaround_applied,
            solution: row.solution,
            cause: row.cause,
            subcause: row.subcause,
            due_at: row.due_at,
            accepted_at: row.accepted_at,
            resolved_at: row.resolved_at,
            user_confirmed_at: row.user_confirmed_at,
            withdrawal_requested_at: row.withdrawal_requested_at,
            user_reported: row.user_reported,
            closed_at: row.closed_at,
            closed_by: row.closed_by,
            duplicate_of: row.duplicate_of,
            recurrence_of: row.recurrence_of,
            occurrences: row.occurrences,
            last_occurrence_at: row.last_occurrence_at,
            dedup_key: row.dedup_key,
            change_ref: row.change_ref,
            follow_up_due_at: row.follow_up_due_at,
            knowledge_entry_id: row.knowledge_entry_id,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
            links: serde_json::from_value(row.links).map_err(StoreError::internal)?,
        })
    }
}

/// The sort rank of a level, as the `level_rank` column stores it.
pub fn level_rank(level: Level) -> i16 {
    match level {
        Level::Low => 1,
        Level::Medium => 2,
        Level::High => 3,
    }
}

fn reporter_json(reporter: &Option<Reporter>) -> Result<Option<serde_json::Value>, StoreError> {
    reporter
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(StoreError::internal)
}

fn links_json(links: &[Link]) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(links).map_err(StoreError::internal)
}

impl TryFrom<Incident> for IncidentRow {
    type Error = StoreError;

    fn try_from(i: Incident) -> Result<Self, StoreError> {
        Ok(IncidentRow {
            kind: i.kind.as_str().to_owned(),
            channel: i.channel.as_str().to_owned(),
            level: i.level.as_str().to_owned(),
            level_rank: level_rank(i.level),
            status: i.status.as_str().to_owned(),
            tier: i.tier.as_str().to_owned(),
            closure_code: i.closure_code.map(|c| c.as_str().to_owned()),
            reporter: reporter_json(&i.reporter)?,
            id: i.id,
            number: i.number,
            title: i.title,
            description: i.description,
            customer_id: i.customer_id,
            source_system: i.source_system,
            ci_id: i.ci_id,
            category: i.category,
            subcategory: i.subcategory,
            affects_onsite_work: i.affects_onsite_work,
            affects_data_upload: i.affects_data_upload,
            assignee_id: i.assignee_id,
            workaround: i.workaround,
            workaround_applied: i.workaround_applied,
            solution: i.solution,
            cause: i.cause,
            subcause: i.subcause,
            due_at: i.due_at,
            accepted_at: i.accepted_at,
            resolved_at: i.resolved_at,
            user_confirmed_at: i.user_confirmed_at,
            withdrawal_requested_at: i.withdrawal_requested_at,
            user_reported: i.user_reported,
            closed_at: i.closed_at,
            closed_by: i.closed_by,
            duplicate_of: i.duplicate_of,
            recurrence_of: i.recurrence_of,
            occurrences: i.occurrences,
            last_occurrence_at: i.last_occurrence_at,
            dedup_key: i.dedup_key,
            change_ref: i.change_ref,
            follow_up_due_at: i.follow_up_due_at,
            knowledge_entry_id: i.knowledge_entry_id,
            created_by: i.created_by,
            created_at: i.created_at,
            updated_at: i.updated_at,
            version: i.version,
            links: links_json(&i.links)?,
        })
    }
}

/// An incident to insert, as decided by [`crate::domain::workflow::new_incident`].
// `None` binds NULL (every such column defaults to NULL) instead of writing DEFAULT, so the
// statement's text is the same for every incident and PostgreSQL plans it once per connection.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = incidents, treat_none_as_default_value = false)]
#[allow(missing_docs)]
pub struct NewIncidentRow {
    pub kind: String,
    pub channel: String,
    pub title: String,
    pub description: String,
    pub customer_id: Option<i64>,
    pub reporter: Option<serde_json::Value>,
    pub user_reported: bool,
    pub source_system: Option<String>,
    pub ci_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub level: String,
    pub affects_onsite_work: bool,
    pub affects_data_upload: bool,
    pub status: String,
    pub tier: String,
    pub due_at: DateTime<Utc>,
    pub recurrence_of: Option<i64>,
    pub dedup_key: Option<String>,
    pub last_occurrence_at: Option<DateTime<Utc>>,
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub links: serde_json::Value,
}

impl TryFrom<NewIncident> for NewIncidentRow {
    type Error = StoreError;

    fn try_from(new: NewIncident) -> Result<Self, StoreError> {
        Ok(NewIncidentRow {
            kind: new.kind.as_str().to_owned(),
            channel: new.channel.as_str().to_owned(),
            reporter: reporter_json(&new.reporter)?,
            user_reported: new.user_reported,
            level: new.level.as_str().to_owned(),
            status: new.status.as_str().to_owned(),
            tier: new.tier.as_str().to_owned(),
            title: new.title,
            description: new.description,
            customer_id: new.customer_id,
            source_system: new.source_system,
            ci_id: new.ci_id,
            category: new.category,
            subcategory: new.subcategory,
            affects_onsite_work: new.affects_onsite_work,
            affects_data_upload: new.affects_data_upload,
            due_at: new.due_at,
            recurrence_of: new.recurrence_of,
            dedup_key: new.dedup_key,
            last_occurrence_at: new.last_occurrence_at,
            created_by: new.created_by,
            created_at: new.created_at,
            updated_at: new.created_at,
            links: links_json(&new.links)?,
        })
    }
}

/// A history entry.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = incident_history, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct HistoryRow {
    pub id: i64,
    pub incident_id: i64,
    pub actor_id: Option<i64>,
    pub action: String,
    pub changes: serde_json::Value,
    pub comment: Option<String>,
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

impl HistoryRow {
    /// The recorded field changes.
    pub fn field_changes(&self) -> Vec<FieldChange> {
        serde_json::from_value(self.changes.clone()).unwrap_or_default()
    }
}

/// A note.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = incident_notes, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct NoteRow {
    pub id: i64,
    pub incident_id: i64,
    pub author_id: i64,
    pub visibility: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub attachment_ids: Vec<i64>,
}

impl TryFrom<NoteRow> for Note {
    type Error = StoreError;

    fn try_from(row: NoteRow) -> Result<Self, StoreError> {
        Ok(Note {
            visibility: parse_stored(&row.visibility)?,
            id: row.id,
            incident_id: row.incident_id,
            author_id: row.author_id,
            body: row.body,
            created_at: row.created_at,
            attachment_ids: row.attachment_ids,
        })
    }
}

/// The incident with `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> Result<Incident, StoreError> {
    incidents::table
        .find(id)
        .select(IncidentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("incident", id))?
        .try_into()
}

/// Incident `id`, and whether an open customer-issue ticket keeps it from being resolved
/// (`coordination::blocks_resolving`), in one statement.
pub fn find_with_blocking(
    conn: &mut PgConnection,
    id: i64,
) -> Result<(Incident, bool), StoreError> {
    use super::schema::coordination_tickets;
    let blocked = diesel::dsl::exists(
        super::coordination::blocking_tickets()
            .filter(coordination_tickets::incident_id.eq(incidents::id)),
    );
    let (row, blocked): (IncidentRow, bool) = incidents::table
        .find(id)
        .select((IncidentRow::as_select(), blocked))
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("incident", id))?;
    Ok((row.try_into()?, blocked))
}

/// The oldest unresolved incident (`new` or `in_progress`) with the same customer, system,
/// configuration item and subcategory, when there is one.
pub fn find_unresolved_duplicate(
    conn: &mut PgConnection,
    signature: &DuplicateSignature,
) -> Result<Option<i64>, StoreError> {
    Ok(incidents::table
        .filter(incidents::customer_id.eq(signature.customer_id))
        .filter(incidents::source_system.eq(&signature.source_system))
        .filter(incidents::ci_id.eq(signature.ci_id))
        .filter(incidents::subcategory.eq(&signature.subcategory))
        .filter(incidents::status.eq_any(["new", "in_progress"]))
        .select(incidents::id)
        .order(incidents::id.asc())
        .first(conn)
        .optional()?)
}

/// Who owns incident `id` and where it stands, when it exists.
pub fn find_ref(conn: &mut PgConnection, id: i64) -> Result<Option<IncidentRef>, StoreError> {
    let found: Option<(i64, Option<i64>, String)> = incidents::table
        .find(id)
        .select((incidents::id, incidents::customer_id, incidents::status))
        .first(conn)
        .optional()?;
    found
        .map(|(id, customer_id, status)| {
            Ok(IncidentRef {
                id,
                customer_id,
                status: parse_stored(&status)?,
            })
        })
        .transpose()
}

/// History entries, oldest first; internal ones only when asked.
pub fn history(
    conn: &mut PgConnection,
    id: i64,
    include_internal: bool,
) -> Result<Vec<HistoryRow>, StoreError> {
    let mut query = incident_history::table
        .filter(incident_history::incident_id.eq(id))
        .select(HistoryRow::as_select())
        .into_boxed();
    if !include_internal {
        query = query.filter(incident_history::internal.eq(false));
    }
    Ok(query.order(incident_history::id.asc()).load(conn)?)
}

/// Notes, oldest first; internal ones only when asked.
pub fn notes(
    conn: &mut PgConnection,
    id: i64,
    include_internal: bool,
) -> Result<Vec<Note>, StoreError> {
    let mut query = incident_notes::table
        .filter(incident_notes::incident_id.eq(id))
        .select(NoteRow::as_select())
        .into_boxed();
    if !include_internal {
        query = query.filter(incident_notes::visibility.eq("public"));
    }
    let rows: Vec<NoteRow> = query.order(incident_notes::id.asc()).load(conn)?;
    rows.into_iter().map(Note::try_from).collect()
}

/// An unresolved incident the SLA watcher has to escalate.
#[derive(Debug, Clone, QueryableByName)]
pub struct SlaCandidate {
    /// Incident id.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    /// The warning threshold has passed without a warning for this deadline.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub warn: bool,
    /// The deadline has passed without a breach escalation for it.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub breach: bool,
}

/// Unresolved incidents past `warning_percent` of their time, or past their deadline, that have
/// not been escalated for that deadline yet; earliest deadline first.
pub fn sla_candidates(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    warning_percent: u32,
    limit: i64,
) -> Result<Vec<SlaCandidate>, StoreError> {
    use diesel::sql_types::{BigInt, Double, Timestamptz};
    Ok(diesel::sql_query(
        "SELECT id, warn, breach FROM ( \
             SELECT i.id, i.due_at, \
                 NOT EXISTS (SELECT 1 FROM escalations e WHERE e.incident_id = i.id \
                             AND e.trigger = 'sla_warning' AND e.due_at = i.due_at) AS warn, \
                 i.due_at <= $1 AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.incident_id = i.id \
                             AND e.trigger = 'sla_breach' AND e.due_at = i.due_at) AS breach \
             FROM incidents i \
             WHERE i.status IN ('new', 'in_progress') \
               AND i.created_at + (i.due_at - i.created_at) * $2 <= $1 \
         ) c WHERE warn OR breach ORDER BY due_at, id LIMIT $3",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<Double, _>(f64::from(warning_percent) / 100.0)
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}
