//! Idempotency keys (SPEC §10): who claimed a key for which request, and the response to replay.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::schema::idempotency_keys as keys;
use crate::error::AppError;

/// How long a response is replayed.
pub const RETENTION: TimeDelta = TimeDelta::hours(24);
/// How long a claimed key may stay in flight before it counts as abandoned (its request died
/// with its server) and another request may take it over.
pub const ABANDONED_AFTER: TimeDelta = TimeDelta::minutes(2);

/// What a key is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    /// The caller.
    pub user_id: i64,
    /// The HTTP method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The key.
    pub key: String,
}

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `ETag`.
    pub etag: Option<String>,
    /// `Location`.
    pub location: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// What the first look at a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's now: run it, then [`finish`] or [`release`].
    Run,
    /// The same request was answered before: replay this.
    Replay(StoredResponse),
    /// The key was used for another body.
    Reused,
    /// The same request is being answered right now.
    InFlight,
}

type Row = (
    Vec<u8>,
    Option<i16>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    DateTime<Utc>,
);

/// Claims `scope` for a request whose body hashes to `request_hash`, or says why not. Expired
/// and abandoned claims are taken over.
pub fn claim(
    conn: &mut PgConnection,
    scope: &KeyScope,
    request_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Claim, AppError> {
    conn.transaction(|conn| {
        let inserted = diesel::insert_into(keys::table)
            .values((
                keys::user_id.eq(scope.user_id),
                keys::method.eq(&scope.method),
                keys::path.eq(&scope.path),
                keys::key.eq(&scope.key),
                keys::request_hash.eq(request_hash),
                keys::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
        if inserted == 1 {
            return Ok(Claim::Run);
        }
        let found: Row = keys::table
            .find(primary_key(scope))
            .select((
                keys::request_hash,
                keys::status,
                keys::content_type,
                keys::etag,
                keys::location,
                keys::body,
                keys::created_at,
            ))
            .for_update()
            .first(conn)?;
        let (hash, status, content_type, etag, location, body, created_at) = found;
        let expired = now - created_at >= RETENTION;
        let abandoned = status.is_none() && now - created_at >= ABANDONED_AFTER;
        if expired || abandoned {
            diesel::update(keys::table.find(primary_key(scope)))
                .set((
                    keys::request_hash.eq(request_hash),
                    keys::status.eq(None::<i16>),
                    keys::content_type.eq(None::<String>),
                    keys::etag.eq(None::<String>),
                    keys::location.eq(None::<String>),
                    keys::body.eq(None::<Vec<u8>>),
                    keys::created_at.eq(now),
                ))
                .execute(conn)?;
            return Ok(Claim::Run);
        }
        if hash != request_hash {
            return Ok(Claim::Reused);
        }
        Ok(match status {
            None => Claim::InFlight,
            Some(status) => Claim::Replay(StoredResponse {
                status: u16::try_from(status).map_err(AppError::internal)?,
                content_type,
                etag,
                location,
                body: body.unwrap_or_default(),
            }),
        })
    })
}

/// Keeps the response of the request that claimed `scope`.
pub fn finish(
    conn: &mut PgConnection,
    scope: &KeyScope,
    response: &StoredResponse,
) -> Result<(), AppError> {
    diesel::update(keys::table.find(primary_key(scope)))
        .set((
            keys::status.eq(i16::try_from(response.status).map_err(AppError::internal)?),
            keys::content_type.eq(&response.content_type),
            keys::etag.eq(&response.etag),
            keys::location.eq(&response.location),
            keys::body.eq(&response.body),
        ))
        .execute(conn)?;
    Ok(())
}

/// Runs `work` and, when a key was claimed (`scope`), keeps its answer in the same transaction
/// as its effect: once the effect is committed, so is the answer a retry replays.
pub fn answered_with(
    conn: &mut PgConnection,
    scope: Option<&KeyScope>,
    work: impl FnOnce(&mut PgConnection) -> Result<StoredResponse, AppError>,
) -> Result<StoredResponse, AppError> {
    let Some(scope) = scope else {
        return work(conn);
    };
    conn.transaction(|conn| {
        let answer = work(conn)?;
        finish(conn, scope, &answer)?;
        Ok(answer)
    })
}

/// Gives a claimed key up, so that a retry runs again (after a failure a retry may mend).
pub fn release(conn: &mut PgConnection, scope: &KeyScope) -> Result<(), AppError> {
    diesel::delete(
        keys::table
            .find(primary_key(scope))
            .filter(keys::status.is_null()),
    )
    .execute(conn)?;
    Ok(())
}

/// Deletes keys older than the retention; returns how many.
pub fn delete_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<usize, AppError> {
    Ok(diesel::delete(keys::table.filter(keys::created_at.le(now - RETENTION))).execute(conn)?)
}

fn primary_key(scope: &KeyScope) -> (i64, &str, &str, &str) {
    (scope.user_id, &scope.method, &scope.path, &scope.key)
}
