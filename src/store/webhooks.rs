//! Webhook subscriptions and their deliveries.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, Text, Timestamptz};

use super::StoreError;
use super::schema::{webhook_deliveries, webhook_delivery_attempts, webhooks};
use super::{PageRequest, check_version, split_page};

/// A stored webhook.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
    /// Only events about this customer's incidents and tickets, when set.
    pub customer_id: Option<i64>,
}

/// Changes to a webhook.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    pub active: Option<bool>,
    /// `Some(None)`: every customer again.
    pub customer_id: Option<Option<i64>>,
}

/// A delivery with its attempts.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct DeliveryRow {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One attempt to deliver.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_delivery_attempts, check_for_backend(diesel::pg::Pg))]
#[allow(missing_docs)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// Creates a webhook.
pub fn insert(
    conn: &mut PgConnection,
    url: &str,
    events: &[String],
    secret: &str,
    active: bool,
    customer_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<WebhookRow, StoreError> {
    check_customer(conn, customer_id)?;
    Ok(diesel::insert_into(webhooks::table)
        .values((
            webhooks::url.eq(url),
            webhooks::events.eq(events),
            webhooks::secret.eq(secret),
            webhooks::active.eq(active),
            webhooks::customer_id.eq(customer_id),
            webhooks::created_at.eq(now),
            webhooks::updated_at.eq(now),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(conn)?)
}

/// A webhook names an existing customer, or none.
fn check_customer(conn: &mut PgConnection, customer_id: Option<i64>) -> Result<(), StoreError> {
    let Some(id) = customer_id else {
        return Ok(());
    };
    match super::customers::find_optional(conn, id)? {
        Some(_) => Ok(()),
        None => Err(StoreError::invalid_field(
            "customer_id",
            "not_found",
            format!("customer {id} does not exist"),
        )),
    }
}

/// The webhook with `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> Result<WebhookRow, StoreError> {
    webhooks::table
        .find(id)
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::not_found("webhook", id))
}

/// One page of webhooks in id order.
pub fn list(
    conn: &mut PgConnection,
    page: PageRequest,
) -> Result<(Vec<WebhookRow>, Option<i64>), StoreError> {
    let mut query = webhooks::table.select(WebhookRow::as_select()).into_boxed();
    if let Some(after) = page.after {
        query = query.filter(webhooks::id.gt(after));
    }
    let rows = query
        .order(webhooks::id.asc())
        .limit(page.limit + 1)
        .load(conn)?;
    Ok(split_page(rows, page, |row| row.id))
}

/// Applies `patch`, checking `expected_version` when given.
pub fn update(
    conn: &mut PgConnection,
    id: i64,
    patch: WebhookPatch,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<WebhookRow, StoreError> {
    conn.transaction(|conn| {
        let current: WebhookRow = webhooks::table
            .find(id)
            .select(WebhookRow::as_select())
            .for_update()
            .first(conn)
            .optional()?
            .ok_or_else(|| StoreError::not_found("webhook", id))?;
        check_version(expected_version, current.version)?;
        let customer_id = patch.customer_id.unwrap_or(current.customer_id);
        check_customer(conn, customer_id)?;
        Ok(diesel::update(webhooks::table.find(id))
            .set((
                webhooks::customer_id.eq(customer_id),
                webhooks::url.eq(patch.url.unwrap_or(current.url)),
                webhooks::events.eq(patch.events.unwrap_or(current.events)),
                webhooks::secret.eq(patch.secret.unwrap_or(current.secret)),
                webhooks::active.eq(patch.active.unwrap_or(current.active)),
                webhooks::updated_at.eq(now),
                webhooks::version.eq(current.version + 1),
            ))
            .returning(WebhookRow::as_returning())
            .get_result(conn)?)
    })
}

/// Deletes a webhook and its delivery log.
pub fn delete(conn: &mut PgConnection, id: i64) -> Result<(), StoreError> {
    let deleted = diesel::delete(webhooks::table.find(id)).execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::not_found("webhook", id));
    }
    Ok(())
}

/// A delivery, its event type and its attempts.
pub type DeliveryWithAttempts = (DeliveryRow, String, Vec<AttemptRow>);

/// One page of a webhook's deliveries (newest first) with their attempts.
pub fn deliveries(
    conn: &mut PgConnection,
    webhook_id: i64,
    page: PageRequest,
) -> Result<(Vec<DeliveryWithAttempts>, Option<i64>), StoreError> {
    find(conn, webhook_id)?;
    let mut query = webhook_deliveries::table
        .inner_join(super::schema::outbox_events::table)
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .select((
            DeliveryRow::as_select(),
            super::schema::outbox_events::event_type,
        ))
        .into_boxed();
    if let Some(before) = page.after {
        query = query.filter(webhook_deliveries::id.lt(before));
    }
    let rows: Vec<(DeliveryRow, String)> = query
        .order(webhook_deliveries::id.desc())
        .limit(page.limit + 1)
        .load(conn)?;
    let (rows, next) = split_page(rows, page, |(row, _)| row.id);
    let ids: Vec<i64> = rows.iter().map(|(row, _)| row.id).collect();
    let attempts: Vec<AttemptRow> = webhook_delivery_attempts::table
        .filter(webhook_delivery_attempts::delivery_id.eq_any(&ids))
        .order(webhook_delivery_attempts::id.asc())
        .select(AttemptRow::as_select())
        .load(conn)?;
    let rows = rows
        .into_iter()
        .map(|(row, event_type)| {
            let mine = attempts
                .iter()
                .filter(|a| a.delivery_id == row.id)
                .cloned()
                .collect();
            (row, event_type, mine)
        })
        .collect();
    Ok((rows, next))
}

/// Queues delivery `delivery_id` of webhook `webhook_id` again, with a fresh attempt budget.
pub fn redeliver(
    conn: &mut PgConnection,
    webhook_id: i64,
    delivery_id: i64,
) -> Result<DeliveryRow, StoreError> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(delivery_id))
            .filter(webhook_deliveries::webhook_id.eq(webhook_id)),
    )
    .set((
        webhook_deliveries::status.eq("pending"),
        webhook_deliveries::attempts.eq(0),
        webhook_deliveries::next_attempt_at.eq(diesel::dsl::now),
        webhook_deliveries::locked_until.eq(None::<DateTime<Utc>>),
    ))
    .returning(DeliveryRow::as_returning())
    .get_result(conn)
    .optional()?
    .ok_or_else(|| StoreError::not_found("delivery", delivery_id))
}

/// A delivery claimed by this worker, with what it needs to send.
#[derive(Debug, Clone, QueryableByName)]
#[allow(missing_docs)]
pub struct Claimed {
    #[diesel(sql_type = BigInt)]
    pub delivery_id: i64,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub active: bool,
    #[diesel(sql_type = BigInt)]
    pub event_id: i64,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Jsonb)]
    pub data: serde_json::Value,
}

/// Claims up to `limit` due deliveries for `lease_secs`; instances never claim the same one
/// (SKIP LOCKED), and a crashed worker's claim expires with its lease.
pub fn claim_due(
    conn: &mut PgConnection,
    limit: i64,
    lease_secs: i32,
) -> Result<Vec<Claimed>, StoreError> {
    Ok(diesel::sql_query(super::leases::claim_statement(
        "webhook_deliveries",
        "t.id, t.attempts, t.webhook_id, t.event_id",
        "SELECT c.id AS delivery_id, c.attempts, w.url, w.secret, w.active, \
                e.id AS event_id, e.event_type, e.occurred_at, e.data \
         FROM claimed c JOIN webhooks w ON w.id = c.webhook_id \
         JOIN outbox_events e ON e.id = c.event_id \
         ORDER BY c.id",
    ))
    .bind::<BigInt, _>(limit)
    .bind::<Integer, _>(lease_secs)
    .load(conn)?)
}

/// What one attempt achieved.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// HTTP status, when the receiver answered.
    pub status_code: Option<i32>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// True for a 2xx answer.
    pub delivered: bool,
    /// How long it took.
    pub duration_ms: i32,
}

/// Where a delivery stands after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// The receiver took it.
    Delivered,
    /// Another attempt is scheduled.
    Retrying,
    /// The last attempt failed; no more are made (until someone redelivers it).
    GivenUp,
}

/// Records an attempt; schedules the next one after `retry_after_ms`, or gives up after
/// `max_attempts`. Returns where the delivery now stands.
pub fn record_attempt(
    conn: &mut PgConnection,
    delivery_id: i64,
    outcome: &AttemptOutcome,
    max_attempts: i32,
    retry_after_ms: i64,
) -> Result<DeliveryState, StoreError> {
    conn.transaction(|conn| {
        diesel::insert_into(webhook_delivery_attempts::table)
            .values((
                webhook_delivery_attempts::delivery_id.eq(delivery_id),
                webhook_delivery_attempts::attempted_at.eq(diesel::dsl::now),
                webhook_delivery_attempts::status_code.eq(outcome.status_code),
                webhook_delivery_attempts::error.eq(&outcome.error),
                webhook_delivery_attempts::duration_ms.eq(outcome.duration_ms),
            ))
            .execute(conn)?;
        #[derive(QueryableByName)]
        struct Status {
            #[diesel(sql_type = Text)]
            status: String,
        }
        let status: Status = diesel::sql_query(
            "UPDATE webhook_deliveries SET \
                attempts = attempts + 1, \
                status = CASE WHEN $2 THEN 'delivered' WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END, \
                delivered_at = CASE WHEN $2 THEN now() ELSE NULL END, \
                next_attempt_at = now() + make_interval(secs => $4::float8 / 1000), \
                locked_until = NULL, last_status_code = $5, last_error = $6 \
             WHERE id = $1 RETURNING status",
        )
        .bind::<BigInt, _>(delivery_id)
        .bind::<diesel::sql_types::Bool, _>(outcome.delivered)
        .bind::<Integer, _>(max_attempts)
        .bind::<BigInt, _>(retry_after_ms)
        .bind::<Nullable<Integer>, _>(outcome.status_code)
        .bind::<Nullable<Text>, _>(&outcome.error)
        .get_result(conn)?;
        match status.status.as_str() {
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::GivenUp),
            "pending" => Ok(DeliveryState::Retrying),
            other => Err(StoreError::internal(format!(
                "stored delivery status `{other}` is unknown"
            ))),
        }
    })
}
