//! Events for webhooks, written in the same transaction as the change they describe, and
//! fanned out at once to one delivery per subscribed, active webhook.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment};
use diesel::sql_types::{BigInt, Nullable, Text};

use super::StoreError;
use super::combined_statements::{Combined, RETURNED};
use super::schema::outbox_events;

/// Event types a webhook can subscribe to: every type the stream carries (SPEC §10, §12).
pub use crate::domain::stream::EVENT_TYPES;

/// What an event is: its type and the customer it concerns (`None`: no known customer), which
/// decides the webhooks limited to one customer.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// One of [`EVENT_TYPES`].
    pub event_type: &'a str,
    /// The customer of the incident the event is about.
    pub customer_id: Option<i64>,
    /// Who acted; `None` for the server's own jobs.
    pub actor_id: Option<i64>,
}

/// Records an event and queues its deliveries, in one statement.
pub fn emit(
    conn: &mut PgConnection,
    event: Event<'_>,
    occurred_at: DateTime<Utc>,
    data: serde_json::Value,
) -> Result<i64, StoreError> {
    let statement = Combined::new(event_insert(&event, occurred_at, data))
        .with("deliveries", Deliveries::of(RETURNED, &event));
    Ok(statement.get_result(conn)?)
}

/// Adds to `statement` the parts that record an event and queue its deliveries. `name` names
/// the event's part and must be unique in the statement.
pub fn with_event<Q>(
    statement: Combined<Q>,
    name: &str,
    event: Event<'_>,
    occurred_at: DateTime<Utc>,
    data: serde_json::Value,
) -> Combined<Q> {
    statement
        .with(name, event_insert(&event, occurred_at, data))
        .with(format!("{name}_deliveries"), Deliveries::of(name, &event))
}

/// Inserts an event, returning its id.
fn event_insert(
    event: &Event<'_>,
    occurred_at: DateTime<Utc>,
    data: serde_json::Value,
) -> impl Query<SqlType = BigInt> + QueryFragment<Pg> + Send + 'static {
    diesel::insert_into(outbox_events::table)
        .values((
            outbox_events::event_type.eq(event.event_type.to_owned()),
            outbox_events::occurred_at.eq(occurred_at),
            outbox_events::data.eq(data),
            outbox_events::customer_id.eq(event.customer_id),
            outbox_events::actor_id.eq(event.actor_id),
        ))
        .returning(outbox_events::id)
}

/// One delivery per active webhook subscribed to the event that the part `event` inserted, and
/// limited to no customer or to the event's.
struct Deliveries {
    event: String,
    event_type: String,
    customer_id: Option<i64>,
}

impl Deliveries {
    fn of(part: &str, event: &Event<'_>) -> Self {
        Deliveries {
            event: part.to_owned(),
            event_type: event.event_type.to_owned(),
            customer_id: event.customer_id,
        }
    }
}

impl QueryFragment<Pg> for Deliveries {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, next_attempt_at, created_at) \
             SELECT w.id, e.id, now(), now() FROM webhooks w, ",
        );
        out.push_identifier(&self.event)?;
        out.push_sql(" e WHERE w.active AND ");
        out.push_bind_param::<Text, _>(&self.event_type)?;
        out.push_sql(" = ANY (w.events) AND (w.customer_id IS NULL OR w.customer_id = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.customer_id)?;
        out.push_sql(")");
        Ok(())
    }
}
