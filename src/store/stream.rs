//! The live stream's reads of the outbox, its tickets, its pruning, and the listener that wakes
//! an instance when another one has written events.
//!
//! The stream's order is `(tx, id)`: the inserting transaction, then the id (migration 000020
//! says why). A read returns events in that order and says which of them are *settled*: written
//! by a transaction older than every transaction still running, so that nothing can ever be
//! inserted before them. Only settled events are sent; a client that resumes after one never
//! misses an event committed later with a smaller id.

use std::sync::Weak;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use tokio::sync::Notify;

use super::StoreError;
use super::credentials::Credential;
use super::schema::stream_tickets;
use crate::domain::stream::Stored;

/// Subscribes the listener to the channel the trigger of migration 000020 notifies.
const LISTEN: &str = "LISTEN outbox_events";

/// Where an event sits in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// The inserting transaction's id.
    pub tx: i64,
    /// The event's id.
    pub id: i64,
}

/// An event read for the stream.
#[derive(Debug, Clone, QueryableByName)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    tx: i64,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<BigInt>)]
    customer_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    actor_id: Option<i64>,
    #[diesel(sql_type = Jsonb)]
    data: serde_json::Value,
    #[diesel(sql_type = Bool)]
    settled: bool,
}

/// What [`after`] found.
#[derive(Debug, Default)]
pub struct Batch {
    /// Settled events after the position, in stream order.
    pub events: Vec<(Position, Stored)>,
    /// More events follow: unsettled ones, or more than the limit.
    pub more: bool,
}

/// Up to `limit` settled events after `from`, in stream order.
pub fn after(conn: &mut PgConnection, from: Position, limit: i64) -> Result<Batch, StoreError> {
    let rows: Vec<EventRow> = diesel::sql_query(
        // `e.tx`, not `tx`: in ORDER BY a bare name is the output column (the cast), which no
        // index orders; sorting every later event cost 30-40 ms a read.
        "SELECT e.id, e.tx::text::bigint AS tx, e.event_type, e.occurred_at, e.customer_id, \
                e.actor_id, e.data, e.tx < pg_snapshot_xmin(pg_current_snapshot()) AS settled \
         FROM outbox_events e WHERE (e.tx, e.id) > ($1::xid8, $2) ORDER BY e.tx, e.id LIMIT $3",
    )
    .bind::<Text, _>(from.tx.to_string())
    .bind::<BigInt, _>(from.id)
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    let mut batch = Batch {
        more: rows.len() as i64 == limit,
        events: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        // Rows after an unsettled one are unsettled too: their transactions are younger.
        if !row.settled {
            batch.more = true;
            break;
        }
        let position = Position {
            tx: row.tx,
            id: row.id,
        };
        batch.events.push((
            position,
            Stored {
                id: row.id,
                event_type: row.event_type,
                occurred_at: crate::domain::timestamps::format(&row.occurred_at),
                customer_id: row.customer_id,
                actor_id: row.actor_id,
                data: row.data,
            },
        ));
    }
    Ok(batch)
}

/// The position of the last settled event: where a reader that wants only what comes next
/// starts.
pub fn head(conn: &mut PgConnection) -> Result<Position, StoreError> {
    #[derive(QueryableByName)]
    struct Head {
        #[diesel(sql_type = BigInt)]
        tx: i64,
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let head: Option<Head> = diesel::sql_query(
        "SELECT e.tx::text::bigint AS tx, e.id FROM outbox_events e \
         WHERE e.tx < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY e.tx DESC, e.id DESC LIMIT 1",
    )
    .get_result(conn)
    .optional()?;
    Ok(head.map_or_else(Position::default, |head| Position {
        tx: head.tx,
        id: head.id,
    }))
}

/// Where a client that last received event `id` resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// After this position.
    After(Position),
    /// The event is no longer kept (or older than `retained_since`): the client must reload.
    Gone,
    /// No event of this id was ever written here.
    Unknown,
}

/// Finds event `id` for a client resuming after it, given that events older than
/// `retained_since` are no longer promised.
pub fn resume_after(
    conn: &mut PgConnection,
    id: i64,
    retained_since: DateTime<Utc>,
) -> Result<Resume, StoreError> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = Nullable<BigInt>)]
        tx: Option<i64>,
        #[diesel(sql_type = Nullable<Timestamptz>)]
        occurred_at: Option<DateTime<Utc>>,
        #[diesel(sql_type = BigInt)]
        last_id: i64,
    }
    // An id at most the sequence's last value was drawn here; if its row is missing it was
    // pruned (or its transaction rolled back, which no client could have seen).
    let found: Found = diesel::sql_query(
        "SELECT e.tx::text::bigint AS tx, e.occurred_at, s.last_value AS last_id \
         FROM outbox_events_id_seq s LEFT JOIN outbox_events e ON e.id = $1",
    )
    .bind::<BigInt, _>(id)
    .get_result(conn)?;
    Ok(match (found.tx, found.occurred_at) {
        (Some(tx), Some(at)) if at >= retained_since => Resume::After(Position { tx, id }),
        (Some(_), _) => Resume::Gone,
        (None, _) if id <= found.last_id => Resume::Gone,
        (None, _) => Resume::Unknown,
    })
}

/// Deletes up to `limit` events older than `cutoff` whose webhook deliveries are all finished,
/// with those deliveries (and their attempts); returns how many events went. Events still
/// being delivered stay until their deliveries end.
pub fn prune(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<usize, StoreError> {
    conn.transaction(|conn| {
        let ids: Vec<i64> = diesel::sql_query(
            "SELECT id FROM outbox_events e WHERE occurred_at < $1 AND NOT EXISTS \
               (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending') \
             ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(limit)
        .load::<EventId>(conn)?
        .into_iter()
        .map(|row| row.id)
        .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        diesel::sql_query("DELETE FROM webhook_deliveries WHERE event_id = ANY($1)")
            .bind::<diesel::sql_types::Array<BigInt>, _>(&ids)
            .execute(conn)?;
        Ok(
            diesel::sql_query("DELETE FROM outbox_events WHERE id = ANY($1)")
                .bind::<diesel::sql_types::Array<BigInt>, _>(&ids)
                .execute(conn)?,
        )
    })
}

#[derive(QueryableByName)]
struct EventId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Keeps a stream ticket (by its digest) for `user_id` under its token generation
/// `generation` until `expires_at`.
pub fn issue_ticket(
    conn: &mut PgConnection,
    digest: &str,
    (user_id, generation): (i64, i32),
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(stream_tickets::table)
        .values((
            stream_tickets::digest.eq(digest),
            stream_tickets::user_id.eq(user_id),
            stream_tickets::token_generation.eq(generation),
            stream_tickets::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes the ticket of `digest`, once: the user and token generation it was issued to, unless
/// it is unknown, used or expired at `now`.
pub fn redeem_ticket(
    conn: &mut PgConnection,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<Credential>, StoreError> {
    let taken: Option<(i64, i32, DateTime<Utc>)> =
        diesel::delete(stream_tickets::table.filter(stream_tickets::digest.eq(digest)))
            .returning((
                stream_tickets::user_id,
                stream_tickets::token_generation,
                stream_tickets::expires_at,
            ))
            .get_result(conn)
            .optional()?;
    Ok(taken.and_then(|(user_id, generation, expires_at)| {
        (expires_at > now).then_some(Credential::Jwt {
            user_id,
            generation,
        })
    }))
}

/// Deletes tickets that expired before `now`; returns how many.
pub fn prune_tickets(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(stream_tickets::table.filter(stream_tickets::expires_at.le(now)))
            .execute(conn)?,
    )
}

/// Listens for new events on a connection of its own and signals `wake` at each notification
/// (and once on every connection, as events may have been written while it was not listening).
/// Returns when the connection ends, or at once when `wake`'s owner is gone.
pub async fn listen(database_url: &str, wake: &Weak<Notify>) -> Result<(), tokio_postgres::Error> {
    super::listener::listen(database_url, LISTEN, |_| match wake.upgrade() {
        Some(wake) => {
            wake.notify_one();
            true
        }
        None => false,
    })
    .await
}
