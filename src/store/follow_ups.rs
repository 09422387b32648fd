//! Follow-ups (回访, SPEC §9): records beside closed incidents, and the service desk's queue of
//! incidents still owed one.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;

use super::StoreError;
use super::report_summaries::PerformedFollowUp;
use super::schema::{follow_ups, incidents};
use super::{outbox, parse_stored};
use crate::domain::follow_up::{FollowUp, FollowUpProgress, NewFollowUp};
use crate::domain::incident::{Channel, Incident};

/// A stored follow-up.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = follow_ups, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct FollowUpRow {
    pub id: i64,
    pub incident_id: i64,
    pub channel: String,
    pub reached: bool,
    pub satisfaction: Option<i16>,
    pub comment: String,
    pub performed_by: i64,
    pub performed_at: DateTime<Utc>,
    pub on_time: bool,
    pub completes: bool,
}

impl FollowUpRow {
    /// The channel, typed.
    pub fn channel(&self) -> Result<Channel, StoreError> {
        parse_stored(&self.channel)
    }
}

impl TryFrom<FollowUpRow> for FollowUp {
    type Error = StoreError;

    fn try_from(row: FollowUpRow) -> Result<Self, StoreError> {
        Ok(FollowUp {
            channel: row.channel()?,
            id: row.id,
            incident_id: row.incident_id,
            reached: row.reached,
            satisfaction: row.satisfaction,
            comment: row.comment,
            performed_by: row.performed_by,
            performed_at: row.performed_at,
            on_time: row.on_time,
        })
    }
}

/// Decides and stores a follow-up of incident `id` and adds it to the measures of its month,
/// in one transaction. The incident's row is locked first, so concurrent calls about one
/// incident count its attempts one after another.
pub fn record(
    conn: &mut PgConnection,
    id: i64,
    decide: impl FnOnce(&Incident, FollowUpProgress) -> Result<NewFollowUp, StoreError>,
    timezone: Tz,
) -> Result<FollowUp, StoreError> {
    conn.transaction(|conn| {
        let incident: Incident = incidents::table
            .find(id)
            .select(super::incidents::IncidentRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("incident", id))?
            .try_into()?;
        let earlier: Vec<(bool, bool)> = follow_ups::table
            .filter(follow_ups::incident_id.eq(id))
            .select((follow_ups::completes, follow_ups::reached))
            .load(conn)?;
        let progress = FollowUpProgress {
            completed: earlier.iter().any(|(completes, _)| *completes),
            unreached: earlier.iter().filter(|(_, reached)| !reached).count() as u32,
        };
        let new = decide(&incident, progress)?;
        let row = insert_row(conn, new)?;
        let done = PerformedFollowUp {
            incident_id: row.incident_id,
            performed_at: row.performed_at,
            on_time: row.on_time,
            completes: row.completes,
            reached: row.reached,
            satisfaction: row.satisfaction,
        };
        super::report_summaries::record_follow_up(conn, &incident, &done, timezone)?;
        let follow_up = FollowUp::try_from(row)?;
        let mut data = serde_json::Map::new();
        let view = serde_json::to_value(&follow_up).map_err(StoreError::internal)?;
        data.insert("follow_up".to_owned(), view);
        let event = outbox::Event {
            event_type: "follow_up.created",
            customer_id: incident.customer_id,
            actor_id: Some(follow_up.performed_by),
        };
        outbox::emit(conn, event, follow_up.performed_at, data.into())?;
        Ok(follow_up)
    })
}

fn insert_row(conn: &mut PgConnection, new: NewFollowUp) -> Result<FollowUpRow, StoreError> {
    Ok(diesel::insert_into(follow_ups::table)
        .values((
            follow_ups::incident_id.eq(new.incident_id),
            follow_ups::channel.eq(new.report.channel.as_str()),
            follow_ups::reached.eq(new.report.reached),
            follow_ups::satisfaction.eq(new.report.satisfaction),
            follow_ups::comment.eq(new.report.comment),
            follow_ups::performed_by.eq(new.performed_by),
            follow_ups::performed_at.eq(new.performed_at),
            follow_ups::on_time.eq(new.on_time),
            follow_ups::completes.eq(new.completes),
        ))
        .returning(FollowUpRow::as_returning())
        .get_result(conn)?)
}

/// The follow-ups of incident `id`, oldest first.
pub fn of_incident(conn: &mut PgConnection, id: i64) -> Result<Vec<FollowUp>, StoreError> {
    let rows: Vec<FollowUpRow> = follow_ups::table
        .filter(follow_ups::incident_id.eq(id))
        .order(follow_ups::id.asc())
        .select(FollowUpRow::as_select())
        .load(conn)?;
    rows.into_iter().map(FollowUp::try_from).collect()
}

/// A closed incident still owed its follow-up.
#[derive(Debug, Clone, Queryable)]
#[allow(missing_docs)]
pub struct DueFollowUp {
    pub incident_id: i64,
    pub number: String,
    pub title: String,
    pub customer_id: Option<i64>,
    pub closed_at: Option<DateTime<Utc>>,
    pub follow_up_due_at: Option<DateTime<Utc>>,
}

/// Incidents owed a follow-up (none has completed it yet) that is due before `before` (all when
/// `None`), oldest due first, after the position `after` (due time and id) of the previous page;
/// at most `limit` + 1 rows.
pub fn due(
    conn: &mut PgConnection,
    before: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<DueFollowUp>, StoreError> {
    let done = follow_ups::table
        .filter(follow_ups::incident_id.eq(incidents::id))
        .filter(follow_ups::completes)
        .select(follow_ups::id);
    let mut query = incidents::table
        .filter(incidents::follow_up_due_at.is_not_null())
        .filter(diesel::dsl::not(diesel::dsl::exists(done)))
        .select((
            incidents::id,
            incidents::number,
            incidents::title,
            incidents::customer_id,
            incidents::closed_at,
            incidents::follow_up_due_at,
        ))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(incidents::follow_up_due_at.lt(before));
    }
    if let Some((due, id)) = after {
        query = query.filter(
            incidents::follow_up_due_at
                .gt(due)
                .or(incidents::follow_up_due_at
                    .eq(due)
                    .and(incidents::id.gt(id))),
        );
    }
    Ok(query
        .order((incidents::follow_up_due_at.asc(), incidents::id.asc()))
        .limit(limit + 1)
        .load(conn)?)
}
