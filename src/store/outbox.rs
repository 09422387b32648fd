//! Events for webhooks, written in the same transaction as the change they describe, and
//! fanned out at once to one delivery per subscribed, active webhook.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::outbox_events;
use crate::error::AppError;

/// Event types a webhook can subscribe to (SPEC §10).
pub const EVENT_TYPES: [&str; 8] = [
    "incident.created",
    "incident.resolved",
    "incident.closed",
    "escalation.created",
    "sla.warning",
    "sla.breached",
    "coordination.created",
    "coordination.resolved",
];

/// Records an event and queues its deliveries.
pub fn emit(
    conn: &mut PgConnection,
    event_type: &str,
    occurred_at: DateTime<Utc>,
    data: serde_json::Value,
) -> Result<i64, AppError> {
    let event_id: i64 = diesel::insert_into(outbox_events::table)
        .values((
            outbox_events::event_type.eq(event_type),
            outbox_events::occurred_at.eq(occurred_at),
            outbox_events::data.eq(data),
        ))
        .returning(outbox_events::id)
        .get_result(conn)?;
    diesel::sql_query(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at, created_at) \
         SELECT id, $1, now(), now() FROM webhooks WHERE active AND $2 = ANY (events)",
    )
    .bind::<BigInt, _>(event_id)
    .bind::<Text, _>(event_type)
    .execute(conn)?;
    Ok(event_id)
}
