//! Idempotency keys (SPEC §10): who claimed a key for which request, and the response to replay.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use super::StoreError;
use super::schema::idempotency_keys as keys;

/// How long a response is replayed.
pub const RETENTION: TimeDelta = TimeDelta::hours(24);
/// How long a claimed key may stay in flight before it counts as abandoned (its request died
/// with its server) and another request may take it over, when the request keeps its answer
/// after its effect committed (monitoring events): long enough that no live request is taken
/// over, since it would run twice.
pub const ABANDONED_AFTER: TimeDelta = TimeDelta::minutes(2);
/// The same for a request that keeps its answer in the transaction of its effect
/// ([`answered_with`]): taking over a request that is still alive is safe there, since the one
/// that commits second finds its claim gone and rolls its effect back.
pub const TAKEN_OVER_AFTER: TimeDelta = TimeDelta::seconds(15);

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
    /// The key is this request's now, under this claim token: run it, then [`finish`] or
    /// [`release`].
    Run(i64),
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
/// claims, and claims in flight for `abandoned_after`, are taken over.
pub fn claim(
    conn: &mut PgConnection,
    scope: &KeyScope,
    request_hash: &[u8],
    now: DateTime<Utc>,
    abandoned_after: TimeDelta,
) -> Result<Claim, StoreError> {
    let token: i64 = rand::random();
    conn.transaction(|conn| {
        let inserted = diesel::insert_into(keys::table)
            .values((
                keys::user_id.eq(scope.user_id),
                keys::method.eq(&scope.method),
                keys::path.eq(&scope.path),
                keys::key.eq(&scope.key),
                keys::request_hash.eq(request_hash),
                keys::created_at.eq(now),
                keys::claim_token.eq(token),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
        if inserted == 1 {
            return Ok(Claim::Run(token));
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
        let abandoned = status.is_none() && now - created_at >= abandoned_after;
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
                    keys::claim_token.eq(token),
                ))
                .execute(conn)?;
            return Ok(Claim::Run(token));
        }
        if hash != request_hash {
            return Ok(Claim::Reused);
        }
        Ok(match status {
            None => Claim::InFlight,
            Some(status) => Claim::Replay(StoredResponse {
                status: u16::try_from(status).map_err(StoreError::internal)?,
                content_type,
                etag,
                location,
                body: body.unwrap_or_default(),
            }),
        })
    })
}

/// Keeps the response of the request that claimed `scope` with `token`; false when the claim
/// is no longer that request's (another took it over).
pub fn finish(
    conn: &mut PgConnection,
    scope: &KeyScope,
    token: i64,
    response: &StoredResponse,
) -> Result<bool, StoreError> {
    let kept = diesel::update(
        keys::table
            .find(primary_key(scope))
            .filter(keys::claim_token.eq(token))
            .filter(keys::status.is_null()),
    )
    .set((
        keys::status.eq(i16::try_from(response.status).map_err(StoreError::internal)?),
        keys::content_type.eq(&response.content_type),
        keys::etag.eq(&response.etag),
        keys::location.eq(&response.location),
        keys::body.eq(&response.body),
    ))
    .execute(conn)?;
    Ok(kept == 1)
}

/// Runs `work` and, when a key was claimed (`scope`), keeps its answer in the same transaction
/// as its effect: once the effect is committed, so is the answer a retry replays.
pub fn answered_with<E: From<StoreError>>(
    conn: &mut PgConnection,
    claim: Option<(&KeyScope, i64)>,
    work: impl FnOnce(&mut PgConnection) -> Result<StoredResponse, E>,
) -> Result<StoredResponse, E> {
    let Some((scope, token)) = claim else {
        return work(conn);
    };
    super::transaction(conn, |conn| {
        let answer = work(conn)?;
        if !finish(conn, scope, token, &answer)? {
            // Another request with this key took the claim over: it answers, this one undoes.
            return Err(E::from(StoreError::Conflict {
                code: "idempotency_key_in_use",
                detail: "Another request with this Idempotency-Key took it over; retry to get \
                         its answer."
                    .into(),
            }));
        }
        Ok(answer)
    })
}

/// Gives a key claimed with `token` up, so that a retry runs again (after a failure a retry
/// may mend).
pub fn release(conn: &mut PgConnection, scope: &KeyScope, token: i64) -> Result<(), StoreError> {
    diesel::delete(
        keys::table
            .find(primary_key(scope))
            .filter(keys::claim_token.eq(token))
            .filter(keys::status.is_null()),
    )
    .execute(conn)?;
    Ok(())
}

/// Deletes keys older than the retention; returns how many.
pub fn delete_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::delete(keys::table.filter(keys::created_at.le(now - RETENTION))).execute(conn)?)
}

fn primary_key(scope: &KeyScope) -> (i64, &str, &str, &str) {
    (scope.user_id, &scope.method, &scope.path, &scope.key)
}
