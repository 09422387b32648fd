//! Incidents, their history and notes.
//!
//! Every change goes through [`apply`]: it locks the incident row, checks the client's
//! version, lets the caller's decision (which asks the state machine) produce the new row,
//! and writes the row and its history entry in one transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::escalations::{self, EscalationRow, NewEscalation};
use super::outbox;
use super::schema::{incident_history, incident_notes, incidents, sla_policies};
use super::{check_version, like_pattern};
use crate::domain::changes::{Changes, FieldChange};
use crate::domain::level::Level;
use crate::domain::sla::{Deadlines, SlaTargets};
use crate::domain::state_machine::Facts;
use crate::error::AppError;

/// A stored incident.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, AsChangeset, Serialize)]
#[diesel(table_name = incidents, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
#[allow(missing_docs)]
pub struct IncidentRow {
    pub id: i64,
    #[diesel(skip_update)]
    pub number: String,
    pub kind: String,
    pub channel: String,
    pub title: String,
    pub description: String,
    pub customer_id: i64,
    pub reporter: Option<serde_json::Value>,
    pub source_system: Option<String>,
    pub ci_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub level: String,
    #[diesel(skip_update)]
    #[serde(skip)]
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
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<i64>,
    pub closure_code: Option<String>,
    pub duplicate_of: Option<i64>,
    pub recurrence_of: Option<i64>,
    pub occurrences: i32,
    pub last_occurrence_at: Option<DateTime<Utc>>,
    pub dedup_key: Option<String>,
    pub change_ref: Option<String>,
    #[diesel(skip_update)]
    pub created_by: i64,
    #[diesel(skip_update)]
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: i32,
}

impl IncidentRow {
    /// What the state machine needs to know about this incident.
    pub fn facts(&self) -> Result<Facts, AppError> {
        let parse = |what: &str, value: &str| {
            AppError::internal(format!("stored {what} `{value}` is unknown"))
        };
        Ok(Facts {
            status: self
                .status
                .parse()
                .map_err(|_| parse("status", &self.status))?,
            tier: self.tier.parse().map_err(|_| parse("tier", &self.tier))?,
            customer_id: self.customer_id,
            user_reported: self.reporter.is_some(),
            user_confirmed: self.user_confirmed_at.is_some(),
            classified: self.category.is_some() && self.subcategory.is_some(),
            open_customer_issue: false,
        })
    }
}

/// An incident to create; level and deadline already decided by the domain rules.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = incidents)]
#[allow(missing_docs)]
pub struct NewIncident {
    pub kind: String,
    pub channel: String,
    pub title: String,
    pub description: String,
    pub customer_id: i64,
    pub reporter: Option<serde_json::Value>,
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
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
}

/// A note to add with a change.
#[derive(Debug, Clone)]
pub struct NewNote {
    /// `internal` or `public`.
    pub visibility: String,
    /// Text.
    pub body: String,
}

/// The outcome of a decision on a locked incident.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The incident as it is to be stored.
    pub row: IncidentRow,
    /// History action name (`accept`, `updated`, `note` ...).
    pub action: &'static str,
    /// Free text recorded with the entry (a reason, a note).
    pub comment: Option<String>,
    /// A note written with the change.
    pub note: Option<NewNote>,
    /// An escalation recorded with the change (its `incident_id` is filled in).
    pub escalation: Option<NewEscalation>,
}

/// What [`apply`] stored.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The incident after the change.
    pub row: IncidentRow,
    /// The note written, if any.
    pub note: Option<NoteRow>,
    /// The escalation recorded, if any.
    pub escalation: Option<EscalationRow>,
}

/// The resolution targets now in force.
pub fn sla_targets(conn: &mut PgConnection) -> Result<SlaTargets, AppError> {
    let rows: Vec<(String, i32)> = sla_policies::table
        .select((sla_policies::level, sla_policies::resolution_minutes))
        .load(conn)?;
    let mut targets = SlaTargets::procedure_defaults();
    for (level, minutes) in rows {
        let minutes = chrono::Duration::minutes(i64::from(minutes));
        match level.parse::<Level>() {
            Ok(Level::Low) => targets.low = minutes,
            Ok(Level::Medium) => targets.medium = minutes,
            Ok(Level::High) => targets.high = minutes,
            Err(err) => return Err(AppError::internal(err)),
        }
    }
    Ok(targets)
}

/// Fields that are bookkeeping, not part of what changed.
const UNTRACKED: [&str; 4] = ["id", "number", "created_at", "created_by"];

/// The fields that differ between `old` (none at creation) and `new`.
fn diff(old: Option<&IncidentRow>, new: &IncidentRow) -> Result<Changes, AppError> {
    let as_map = |row: &IncidentRow| match serde_json::to_value(row) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        other => Err(AppError::internal(format!(
            "incident did not serialise to an object: {other:?}"
        ))),
    };
    let new_map = as_map(new)?;
    let old_map = old.map(as_map).transpose()?;
    let mut changes = Changes::new();
    for (field, new_value) in &new_map {
        if UNTRACKED.contains(&field.as_str()) {
            continue;
        }
        let old_value = old_map
            .as_ref()
            .and_then(|map| map.get(field).cloned())
            .unwrap_or(serde_json::Value::Null);
        changes.track(field, &old_value, new_value);
    }
    Ok(changes)
}

/// A history entry about to be written.
struct Entry {
    action: &'static str,
    changes: Changes,
    comment: Option<String>,
    internal: bool,
}

fn record(
    conn: &mut PgConnection,
    incident_id: i64,
    actor_id: Option<i64>,
    now: DateTime<Utc>,
    entry: Entry,
) -> Result<(), AppError> {
    let changes = serde_json::to_value(entry.changes.into_vec()).map_err(AppError::internal)?;
    diesel::insert_into(incident_history::table)
        .values((
            incident_history::incident_id.eq(incident_id),
            incident_history::actor_id.eq(actor_id),
            incident_history::action.eq(entry.action),
            incident_history::changes.eq(changes),
            incident_history::comment.eq(entry.comment),
            incident_history::internal.eq(entry.internal),
            incident_history::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Creates an incident and its `created` history entry in one transaction. `prepare` runs
/// inside the transaction with the deadlines in force (targets and business calendar) and
/// returns the row to insert.
pub fn insert(
    conn: &mut PgConnection,
    actor_id: i64,
    now: DateTime<Utc>,
    timezone: chrono_tz::Tz,
    prepare: impl FnOnce(&mut PgConnection, &Deadlines) -> Result<NewIncident, AppError>,
) -> Result<IncidentRow, AppError> {
    conn.transaction(|conn| {
        let deadlines = super::calendar::deadlines(conn, timezone)?;
        let new = prepare(conn, &deadlines)?;
        let row: IncidentRow = diesel::insert_into(incidents::table)
            .values(&new)
            .returning(IncidentRow::as_returning())
            .get_result(conn)?;
        record(
            conn,
            row.id,
            Some(actor_id),
            now,
            Entry {
                action: "created",
                changes: diff(None, &row)?,
                comment: None,
                internal: false,
            },
        )?;
        outbox::emit(
            conn,
            "incident.created",
            now,
            serde_json::json!({ "incident": &row }),
        )?;
        Ok(row)
    })
}

/// The incident with `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> Result<IncidentRow, AppError> {
    incidents::table
        .find(id)
        .select(IncidentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("incident", id))
}

/// Locks incident `id`, checks `expected_version`, and stores what `decide` returns, with its
/// history entry (and note), in one transaction. Concurrent changes to one incident queue on
/// the row lock, so each decision sees the state the previous one left.
pub fn apply(
    conn: &mut PgConnection,
    id: i64,
    expected_version: Option<i32>,
    actor_id: Option<i64>,
    now: DateTime<Utc>,
    decide: impl FnOnce(&mut PgConnection, &IncidentRow) -> Result<Transition, AppError>,
) -> Result<Applied, AppError> {
    conn.transaction(|conn| {
        let current: IncidentRow = incidents::table
            .find(id)
            .select(IncidentRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| AppError::not_found("incident", id))?;
        let transition = decide(conn, &current)?;
        // The decision may have refused for a reason the client must see first (closed,
        // not visible); only then does a stale version matter.
        check_version(expected_version, current.version)?;
        let changes = diff(Some(&current), &transition.row)?;
        let escalation = match &transition.escalation {
            Some(new) => {
                let new = NewEscalation {
                    incident_id: id,
                    ..new.clone()
                };
                match escalations::insert_once(conn, &new)? {
                    Some(row) => Some(row),
                    // The same SLA escalation exists already (another instance raised it).
                    None if changes.is_empty() => {
                        return Ok(Applied {
                            row: current,
                            note: None,
                            escalation: None,
                        });
                    }
                    None => None,
                }
            }
            None => None,
        };
        let mut stored = current.clone();
        if !changes.is_empty() {
            let mut next = transition.row;
            next.updated_at = now;
            next.version = current.version + 1;
            stored = diesel::update(incidents::table.find(id))
                .set(&next)
                .returning(IncidentRow::as_returning())
                .get_result(conn)?;
        }
        let internal = transition
            .note
            .as_ref()
            .is_some_and(|note| note.visibility == "internal");
        let written = match (&transition.note, actor_id) {
            (Some(note), Some(author)) => Some(
                diesel::insert_into(incident_notes::table)
                    .values((
                        incident_notes::incident_id.eq(id),
                        incident_notes::author_id.eq(author),
                        incident_notes::visibility.eq(&note.visibility),
                        incident_notes::body.eq(&note.body),
                        incident_notes::created_at.eq(now),
                    ))
                    .returning(NoteRow::as_returning())
                    .get_result(conn)?,
            ),
            _ => None,
        };
        if !changes.is_empty()
            || transition.note.is_some()
            || transition.comment.is_some()
            || escalation.is_some()
        {
            record(
                conn,
                id,
                actor_id,
                now,
                Entry {
                    action: transition.action,
                    changes,
                    comment: transition.comment,
                    internal,
                },
            )?;
        }
        if stored.status != current.status {
            let event = match stored.status.as_str() {
                "resolved" => Some("incident.resolved"),
                "closed" => Some("incident.closed"),
                _ => None,
            };
            if let Some(event) = event {
                outbox::emit(conn, event, now, serde_json::json!({ "incident": &stored }))?;
            }
        }
        if let Some(escalation) = &escalation {
            let data = serde_json::json!({ "escalation": escalation, "incident": &stored });
            outbox::emit(conn, "escalation.created", now, data.clone())?;
            match escalation.trigger.as_deref() {
                Some("sla_warning") => {
                    outbox::emit(conn, "sla.warning", now, data)?;
                }
                Some("sla_breach") => {
                    outbox::emit(conn, "sla.breached", now, data)?;
                }
                _ => {}
            }
        }
        Ok(Applied {
            row: stored,
            note: written,
            escalation,
        })
    })
}

/// History entries, oldest first; internal ones only when asked.
pub fn history(
    conn: &mut PgConnection,
    id: i64,
    include_internal: bool,
) -> Result<Vec<HistoryRow>, AppError> {
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
) -> Result<Vec<NoteRow>, AppError> {
    let mut query = incident_notes::table
        .filter(incident_notes::incident_id.eq(id))
        .select(NoteRow::as_select())
        .into_boxed();
    if !include_internal {
        query = query.filter(incident_notes::visibility.eq("public"));
    }
    Ok(query.order(incident_notes::id.asc()).load(conn)?)
}

/// Sort orders of the incident list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Creation time.
    CreatedAt,
    /// Deadline.
    DueAt,
    /// Level (low < medium < high).
    Level,
}

/// Where the previous page ended, in the list's sort order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IncidentCursor {
    /// Sort key value of the last row (RFC 3339 time or level rank).
    pub value: serde_json::Value,
    /// Id of the last row.
    pub id: i64,
}

/// Filters of the incident list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct IncidentFilter {
    pub statuses: Vec<String>,
    pub level: Option<String>,
    pub tier: Option<String>,
    pub assignee_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub ci_id: Option<i64>,
    /// With the time the breach is judged at.
    pub sla_breached: Option<(bool, DateTime<Utc>)>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub q: Option<String>,
}

/// One page of incidents in the chosen order; returns the rows and the cursor of the next
/// page when more follow.
pub fn list(
    conn: &mut PgConnection,
    filter: &IncidentFilter,
    sort: SortKey,
    descending: bool,
    after: Option<IncidentCursor>,
    limit: i64,
) -> Result<(Vec<IncidentRow>, Option<IncidentCursor>), AppError> {
    use incidents::dsl as i;
    let mut query = incidents::table
        .select(IncidentRow::as_select())
        .into_boxed();
    if !filter.statuses.is_empty() {
        query = query.filter(i::status.eq_any(filter.statuses.clone()));
    }
    if let Some(level) = &filter.level {
        query = query.filter(i::level.eq(level.clone()));
    }
    if let Some(tier) = &filter.tier {
        query = query.filter(i::tier.eq(tier.clone()));
    }
    if let Some(assignee) = filter.assignee_id {
        query = query.filter(i::assignee_id.eq(assignee));
    }
    if let Some(customer) = filter.customer_id {
        query = query.filter(i::customer_id.eq(customer));
    }
    if let Some(category) = &filter.category {
        query = query.filter(i::category.eq(category.clone()));
    }
    if let Some(subcategory) = &filter.subcategory {
        query = query.filter(i::subcategory.eq(subcategory.clone()));
    }
    if let Some(ci) = filter.ci_id {
        query = query.filter(i::ci_id.eq(ci));
    }
    if let Some(from) = filter.created_from {
        query = query.filter(i::created_at.ge(from));
    }
    if let Some(to) = filter.created_to {
        query = query.filter(i::created_at.lt(to));
    }
    if let Some(q) = &filter.q {
        let pattern = like_pattern(q);
        query = query.filter(
            i::title
                .ilike(pattern.clone())
                .or(i::description.ilike(pattern.clone()))
                .or(i::number.ilike(pattern)),
        );
    }
    if let Some((breached, now)) = filter.sla_breached {
        let resolved_late = i::resolved_at
            .is_not_null()
            .and(i::resolved_at.gt(i::due_at.nullable()));
        let closed_late = i::resolved_at
            .is_null()
            .and(i::closed_at.is_not_null())
            .and(i::closed_at.gt(i::due_at.nullable()));
        let open_late = i::resolved_at
            .is_null()
            .and(i::closed_at.is_null())
            .and(i::due_at.lt(now).nullable());
        let late = resolved_late.or(closed_late).or(open_late);
        query = if breached {
            query.filter(late.assume_not_null())
        } else {
            query.filter(diesel::dsl::not(late.assume_not_null()))
        };
    }

    macro_rules! keyset {
        ($column:expr, $value:expr) => {{
            if let Some(cursor) = &after {
                let value = $value(&cursor.value)?;
                query = if descending {
                    query.filter(
                        $column
                            .lt(value.clone())
                            .or($column.eq(value).and(i::id.lt(cursor.id))),
                    )
                } else {
                    query.filter(
                        $column
                            .gt(value.clone())
                            .or($column.eq(value).and(i::id.gt(cursor.id))),
                    )
                };
            }
            query = if descending {
                query.order(($column.desc(), i::id.desc()))
            } else {
                query.order(($column.asc(), i::id.asc()))
            };
        }};
    }
    let bad_cursor =
        || AppError::invalid_field("cursor", "invalid", "is not a cursor returned by this list");
    let time = |v: &serde_json::Value| -> Result<DateTime<Utc>, AppError> {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc())
            .ok_or_else(bad_cursor)
    };
    let rank = |v: &serde_json::Value| -> Result<i16, AppError> {
        v.as_i64()
            .and_then(|n| i16::try_from(n).ok())
            .ok_or_else(bad_cursor)
    };
    match sort {
        SortKey::CreatedAt => keyset!(i::created_at, time),
        SortKey::DueAt => keyset!(i::due_at, time),
        SortKey::Level => keyset!(i::level_rank, rank),
    }

    let mut rows = query.limit(limit + 1).load(conn)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|row| IncidentCursor {
            value: match sort {
                SortKey::CreatedAt => serde_json::json!(
                    row.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ),
                SortKey::DueAt => serde_json::json!(
                    row.due_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ),
                SortKey::Level => serde_json::json!(row.level_rank),
            },
            id: row.id,
        })
    } else {
        None
    };
    Ok((rows, next))
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
) -> Result<Vec<SlaCandidate>, AppError> {
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
