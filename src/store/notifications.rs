//! The outbox of e-mail to reporters (SPEC §12): a message is queued in the same transaction as
//! the change it tells of, claimed by the sender of any one instance (`FOR UPDATE SKIP LOCKED`
//! with a lease), and its outcome recorded.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Nullable, SmallInt, Text, Timestamptz};

use super::leases::claim_statement;
use super::schema::incidents;
use super::{PageRequest, StoreError, split_page};
use crate::domain::incident::Incident;
use crate::domain::notification::{MAX_REMINDERS, NotificationKind, NotificationStatus};

/// Queues message `kind` about an incident for its reporter: an `INSERT … SELECT` that inserts
/// nothing when there is no address to reach (`notification_recipient`), so it can be a part of
/// the statement that writes the change.
#[derive(Debug, Clone)]
pub struct Queue {
    incident_id: i64,
    kind: &'static str,
    reporter_email: Option<String>,
    created_by: i64,
    customer_id: Option<i64>,
    note_id: Option<i64>,
    resolution: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl Queue {
    /// Message `kind` about `incident` as it stands after the change; `note_id` for a note.
    pub fn new(
        incident: &Incident,
        kind: NotificationKind,
        note_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Self {
        Queue {
            incident_id: incident.id,
            kind: kind.as_str(),
            reporter_email: incident.reporter.as_ref().and_then(|r| r.email.clone()),
            created_by: incident.created_by,
            customer_id: incident.customer_id,
            note_id,
            resolution: (kind == NotificationKind::Resolved)
                .then_some(incident.resolved_at)
                .flatten(),
            now,
        }
    }

    /// Runs the insert on its own (inside the caller's transaction).
    pub fn execute(self, conn: &mut PgConnection) -> Result<(), StoreError> {
        diesel::RunQueryDsl::execute(self, conn)?;
        Ok(())
    }
}

impl QueryFragment<Pg> for Queue {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO notifications (incident_id, kind, recipient, locale, note_id, resolution, \
             next_attempt_at, created_at) SELECT ",
        );
        out.push_bind_param::<BigInt, _>(&self.incident_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.kind)?;
        out.push_sql(", r.address, COALESCE((SELECT c.locale FROM customers c WHERE c.id = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.customer_id)?;
        out.push_sql("), 'zh'), ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.note_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.resolution)?;
        // Due at once by the database's clock, which the sender compares with.
        out.push_sql(", now(), ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(" FROM (SELECT notification_recipient(");
        out.push_bind_param::<Nullable<Text>, _>(&self.reporter_email)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.created_by)?;
        out.push_sql(") AS address) r WHERE r.address IS NOT NULL");
        Ok(())
    }
}

impl QueryId for Queue {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> RunQueryDsl<Conn> for Queue {}

/// Queues the reminders that are due at `now`: for every user-reported incident still resolved
/// and unconfirmed `after` its resolution, or `after` the last reminder, one more, up to
/// [`MAX_REMINDERS`] per resolution. The reminders of one resolution are numbered and unique,
/// so instances that scan at once add each only once. Returns how many were queued.
pub fn queue_reminders(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    after: TimeDelta,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "INSERT INTO notifications (incident_id, kind, recipient, locale, resolution, reminder, \
                                    next_attempt_at, created_at) \
         SELECT i.id, 'confirmation_reminder', r.address, COALESCE(c.locale, 'zh'), i.resolved_at, \
                sent.count + 1, now(), $1 \
         FROM incidents i \
         LEFT JOIN customers c ON c.id = i.customer_id \
         CROSS JOIN LATERAL ( \
             SELECT count(*)::smallint AS count, max(n.created_at) AS last \
             FROM notifications n \
             WHERE n.incident_id = i.id AND n.kind = 'confirmation_reminder' \
               AND n.resolution = i.resolved_at \
         ) sent \
         CROSS JOIN LATERAL ( \
             SELECT notification_recipient(i.reporter ->> 'email', i.created_by) AS address \
         ) r \
         WHERE i.status = 'resolved' AND i.user_confirmed_at IS NULL AND i.user_reported \
           AND r.address IS NOT NULL AND sent.count < $2 \
           AND COALESCE(sent.last, i.resolved_at) <= $1 - make_interval(secs => $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<SmallInt, _>(MAX_REMINDERS)
    .bind::<diesel::sql_types::Double, _>(after.as_seconds_f64())
    .execute(conn)?)
}

/// A message of an incident's delivery log.
#[derive(Debug, Clone, QueryableByName)]
pub struct NotificationRow {
    /// Id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// What it tells.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// The address it goes to.
    #[diesel(sql_type = Text)]
    pub recipient: String,
    /// `pending`, `sent`, `failed` or `skipped`.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// Attempts made.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// Why the last attempt failed, or why it was skipped.
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    /// When the mail server took it.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was queued.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// A page of the messages about incident `incident_id`, oldest first; 404 when there is no
/// such incident.
pub fn of_incident(
    conn: &mut PgConnection,
    incident_id: i64,
    page: PageRequest,
) -> Result<(Vec<NotificationRow>, Option<i64>), StoreError> {
    let exists: bool =
        diesel::select(diesel::dsl::exists(incidents::table.find(incident_id))).get_result(conn)?;
    if !exists {
        return Err(StoreError::not_found("incident", incident_id));
    }
    let rows: Vec<NotificationRow> = diesel::sql_query(
        "SELECT id, kind, recipient, status, attempts, last_error, sent_at, created_at \
         FROM notifications WHERE incident_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind::<BigInt, _>(incident_id)
    .bind::<BigInt, _>(page.after.unwrap_or(0))
    .bind::<BigInt, _>(page.limit + 1)
    .load(conn)?;
    Ok(split_page(rows, page, |row| row.id))
}

/// A message claimed for sending, with what it says read from the incident now.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    /// The message.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// What it tells.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Where it goes.
    #[diesel(sql_type = Text)]
    pub recipient: String,
    /// `zh` or `en`.
    #[diesel(sql_type = Text)]
    pub locale: String,
    /// Attempts made before this one.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// The resolution a `resolved` message or reminder is about.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub resolution: Option<DateTime<Utc>>,
    /// Which reminder.
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub reminder: Option<i16>,
    /// The incident.
    #[diesel(sql_type = BigInt)]
    pub incident_id: i64,
    /// Its number.
    #[diesel(sql_type = Text)]
    pub number: String,
    /// Its title.
    #[diesel(sql_type = Text)]
    pub title: String,
    /// Its level.
    #[diesel(sql_type = Text)]
    pub level: String,
    /// Its status now.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// Its deadline.
    #[diesel(sql_type = Timestamptz)]
    pub due_at: DateTime<Utc>,
    /// Its solution.
    #[diesel(sql_type = Nullable<Text>)]
    pub solution: Option<String>,
    /// Its resolution time now.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Its confirmation time now.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub user_confirmed_at: Option<DateTime<Utc>>,
    /// Its closure code.
    #[diesel(sql_type = Nullable<Text>)]
    pub closure_code: Option<String>,
    /// The number of the incident it duplicates.
    #[diesel(sql_type = Nullable<Text>)]
    pub duplicate_of: Option<String>,
    /// The note's text, for a note.
    #[diesel(sql_type = Nullable<Text>)]
    pub note: Option<String>,
}

/// Claims up to `limit` due messages for `lease_secs`; instances never claim the same one, and
/// a crashed sender's claim expires with its lease.
pub fn claim_due(
    conn: &mut PgConnection,
    limit: i64,
    lease_secs: i32,
) -> Result<Vec<Claimed>, StoreError> {
    Ok(diesel::sql_query(claim_statement(
        "notifications",
        "t.id, t.kind, t.recipient, t.locale, t.attempts, t.resolution, t.reminder, \
         t.incident_id, t.note_id",
        "SELECT c.id, c.kind, c.recipient, c.locale, c.attempts, c.resolution, c.reminder, \
                i.id AS incident_id, i.number, i.title, i.level, i.status, i.due_at, i.solution, \
                i.resolved_at, i.user_confirmed_at, i.closure_code, \
                d.number AS duplicate_of, nt.body AS note \
         FROM claimed c JOIN incidents i ON i.id = c.incident_id \
         LEFT JOIN incidents d ON d.id = i.duplicate_of \
         LEFT JOIN incident_notes nt ON nt.id = c.note_id \
         ORDER BY c.id",
    ))
    .bind::<BigInt, _>(limit)
    .bind::<Integer, _>(lease_secs)
    .load(conn)?)
}

/// What became of a claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The mail server took it.
    Sent,
    /// Not sent, and never will be; why.
    Skipped(String),
    /// The attempt failed; why.
    Failed(String),
}

/// Records `attempt` for claimed message `id`: a failure is tried again after `retry_after`
/// until `max_attempts`, then given up as `failed`. Returns the status it now has.
pub fn record(
    conn: &mut PgConnection,
    id: i64,
    attempt: &Attempt,
    max_attempts: i32,
    retry_after: TimeDelta,
) -> Result<NotificationStatus, StoreError> {
    #[derive(QueryableByName)]
    struct Stands {
        #[diesel(sql_type = Text)]
        status: String,
    }
    let (settled, error) = match attempt {
        Attempt::Sent => (Some(NotificationStatus::Sent.as_str()), None),
        Attempt::Skipped(why) => (
            Some(NotificationStatus::Skipped.as_str()),
            Some(why.as_str()),
        ),
        Attempt::Failed(why) => (None, Some(why.as_str())),
    };
    let stands: Stands = diesel::sql_query(
        "UPDATE notifications SET \
            attempts = attempts + CASE WHEN $2 = 'skipped' THEN 0 ELSE 1 END, \
            status = COALESCE($2, CASE WHEN attempts + 1 >= $4 THEN 'failed' ELSE 'pending' END), \
            sent_at = CASE WHEN $2 = 'sent' THEN now() END, \
            next_attempt_at = now() + make_interval(secs => $5), \
            locked_until = NULL, last_error = $3 \
         WHERE id = $1 RETURNING status",
    )
    .bind::<BigInt, _>(id)
    .bind::<Nullable<Text>, _>(settled)
    .bind::<Nullable<Text>, _>(error)
    .bind::<Integer, _>(max_attempts)
    .bind::<diesel::sql_types::Double, _>(retry_after.as_seconds_f64())
    .get_result(conn)?;
    super::parse_stored(&stands.status)
}

/// Marks every pending message `skipped` with `reason` (no mail server is configured); returns
/// their kinds, for the metrics.
pub fn skip_pending(conn: &mut PgConnection, reason: &str) -> Result<Vec<String>, StoreError> {
    #[derive(QueryableByName)]
    struct Kind {
        #[diesel(sql_type = Text)]
        kind: String,
    }
    let skipped: Vec<Kind> = diesel::sql_query(
        "UPDATE notifications SET status = 'skipped', last_error = $1, locked_until = NULL \
         WHERE id IN (SELECT id FROM notifications WHERE status = 'pending' \
                      ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED) \
         RETURNING kind",
    )
    .bind::<Text, _>(reason)
    .load(conn)?;
    Ok(skipped.into_iter().map(|k| k.kind).collect())
}
