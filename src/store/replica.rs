//! The read replica of SPEC §14: reads that may lag a little (KPIs, statistics, recurring
//! defects, suggestions, search, history) go to a streaming replica when one is configured,
//! healthy and close enough behind; a caller's own recent writes are read from the primary.
//!
//! How far behind the replica is, is measured against the primary rather than read off the
//! replica's replay timestamp: each check reads the primary's WAL position, then asks whether
//! the replica has replayed up to it. The lag is the time since the last check it had: an idle
//! primary leaves a caught-up replica at no lag, and a replica whose stream broke falls behind
//! as soon as the primary writes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use serde::{Deserialize, Serialize};

use super::{DbPool, StoreError};

/// How often each instance checks the replica.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A caller's write is recorded at most this often per instance; its reads stay on the primary
/// this much longer than the window, so a write left unrecorded is still covered.
const RECORD_EVERY: Duration = Duration::from_secs(1);

/// What the last check found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ReplicaHealth {
    /// Not checked yet: skipped until it is.
    Unchecked,
    /// In use: replaying within `REPLICA_MAX_LAG`.
    Streaming {
        /// Seconds behind the primary, at most.
        lag_seconds: f64,
    },
    /// Skipped: further behind than `REPLICA_MAX_LAG`.
    Lagging {
        /// Seconds behind the primary, at least.
        lag_seconds: f64,
    },
    /// Skipped: it did not answer.
    Down,
}

#[derive(Debug)]
struct Observed {
    health: ReplicaHealth,
    /// The start of the last check that found the replica holding all the primary had.
    caught_up_at: Option<Instant>,
}

/// The replica's pool, its health, and the rules of when to use it.
pub struct Replica {
    pool: DbPool,
    max_lag: Duration,
    window: Duration,
    observed: Mutex<Observed>,
    /// When this instance last recorded each caller's write.
    recorded: Mutex<HashMap<i64, Instant>>,
}

impl Replica {
    /// A replica read through `pool`, skipped beyond `max_lag`; a caller's reads stay on the
    /// primary for `window` after its writes.
    pub fn new(pool: DbPool, max_lag: Duration, window: Duration) -> Replica {
        Replica {
            pool,
            max_lag,
            window,
            observed: Mutex::new(Observed {
                health: ReplicaHealth::Unchecked,
                caught_up_at: None,
            }),
            recorded: Mutex::new(HashMap::new()),
        }
    }

    /// What the last check found.
    pub fn health(&self) -> ReplicaHealth {
        self.observed
            .lock()
            .map_or(ReplicaHealth::Down, |o| o.health)
    }

    fn usable(&self) -> bool {
        matches!(self.health(), ReplicaHealth::Streaming { .. })
    }

    fn set(&self, health: ReplicaHealth, caught_up_at: Option<Instant>) {
        if let Ok(mut observed) = self.observed.lock() {
            observed.health = health;
            if caught_up_at.is_some() {
                observed.caught_up_at = caught_up_at;
            }
        }
    }

    /// Measures the replica against `primary` (blocking: run it off the HTTP workers).
    pub fn check(&self, primary: &DbPool) -> ReplicaHealth {
        let started = Instant::now();
        let position = match primary
            .get_timeout(self.pool.connection_timeout())
            .map_err(StoreError::from)
            .and_then(|mut conn| primary_position(&mut conn))
        {
            Ok(position) => position,
            // The primary cannot say how far it is: nothing to measure against.
            Err(err) => {
                log::debug!("replica check: primary position unknown: {err}");
                return self.health();
            }
        };
        let caught_up = self
            .pool
            .get_timeout(self.pool.connection_timeout())
            .map_err(StoreError::from)
            .and_then(|mut conn| has_replayed(&mut conn, &position));
        let health = match caught_up {
            Err(ref err) => {
                if self.health() != ReplicaHealth::Down {
                    log::warn!("the read replica is not answering, reads go to the primary: {err}");
                }
                ReplicaHealth::Down
            }
            Ok(caught_up) => {
                let since = if caught_up {
                    Some(started)
                } else {
                    self.observed.lock().ok().and_then(|o| o.caught_up_at)
                };
                let lag = since.map_or(Duration::MAX, |at| at.elapsed());
                let lag_seconds = lag.as_secs_f64().min(1e9);
                if caught_up || lag <= self.max_lag {
                    ReplicaHealth::Streaming { lag_seconds }
                } else {
                    ReplicaHealth::Lagging { lag_seconds }
                }
            }
        };
        self.set(health, caught_up.ok().filter(|c| *c).map(|_| started));
        health
    }

    /// Notes on this instance that `user` wrote; whether the write is to be recorded for the
    /// other instances ([`record_write`]): at most once per [`RECORD_EVERY`] per caller.
    pub fn note_write(&self, user: i64) -> bool {
        let now = Instant::now();
        let Ok(mut recorded) = self.recorded.lock() else {
            return true;
        };
        if recorded
            .get(&user)
            .is_some_and(|at| now.duration_since(*at) < RECORD_EVERY)
        {
            return false;
        }
        // A map of every caller who ever wrote would only grow.
        if recorded.len() > 10_000 {
            recorded.retain(|_, at| now.duration_since(*at) < self.window + RECORD_EVERY);
        }
        recorded.insert(user, now);
        true
    }

    /// The server and database the replica's pool reaches, waiting at most `wait` for a
    /// connection; `None` when it gives none.
    pub async fn reached_within(&self, wait: Duration) -> Option<Reached> {
        super::run_waiting(&self.pool, Some(wait), reached)
            .await
            .ok()
    }

    /// Whether `user`'s reads must go to the primary: it wrote within the window (through any
    /// instance).
    fn wrote_recently(&self, conn: &mut PgConnection, user: i64) -> Result<bool, StoreError> {
        if self
            .recorded
            .lock()
            .ok()
            .and_then(|r| r.get(&user).copied())
            .is_some_and(|at| at.elapsed() < self.window + RECORD_EVERY)
        {
            return Ok(true);
        }
        #[derive(QueryableByName)]
        struct Recent {
            #[diesel(sql_type = Bool)]
            recent: bool,
        }
        let window = format!("{} milliseconds", (self.window + RECORD_EVERY).as_millis());
        let found: Option<Recent> = diesel::sql_query(
            "SELECT written_at > now() - $2::interval AS recent FROM recent_writes \
             WHERE user_id = $1",
        )
        .bind::<BigInt, _>(user)
        .bind::<Text, _>(window)
        .get_result(conn)
        .optional()?;
        Ok(found.is_some_and(|f| f.recent))
    }
}

/// Records on the primary that `user` wrote, for every instance to see.
pub fn record_write(conn: &mut PgConnection, user: i64) -> Result<(), StoreError> {
    diesel::sql_query(
        "INSERT INTO recent_writes (user_id, written_at) VALUES ($1, now()) \
         ON CONFLICT (user_id) DO UPDATE SET written_at = now()",
    )
    .bind::<BigInt, _>(user)
    .execute(conn)?;
    Ok(())
}

/// The primary's current WAL position, as text.
fn primary_position(conn: &mut PgConnection) -> Result<String, StoreError> {
    #[derive(QueryableByName)]
    struct Position {
        #[diesel(sql_type = Text)]
        lsn: String,
    }
    let position: Position =
        diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn").get_result(conn)?;
    Ok(position.lsn)
}

/// Whether the replica has replayed the primary's WAL up to `position`. A server that is not
/// in recovery is not behind anything: `DATABASE_READ_URL` may name the primary itself.
fn has_replayed(conn: &mut PgConnection, position: &str) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Replayed {
        #[diesel(sql_type = Bool)]
        replayed: bool,
    }
    let replayed: Replayed = diesel::sql_query(
        "SELECT NOT pg_is_in_recovery() \
                OR COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS replayed",
    )
    .bind::<Text, _>(position)
    .get_result(conn)?;
    Ok(replayed.replayed)
}

/// Runs `work` for `caller` where a read that may lag belongs: on the replica when there is one,
/// it is in use and the caller has not written within the window; else on the primary. A
/// replica that gives no connection is marked down and the read goes to the primary.
pub async fn run_read<T, E, F>(
    primary: &DbPool,
    replica: Option<&std::sync::Arc<Replica>>,
    caller: i64,
    work: F,
) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let replica = match replica.filter(|r| r.usable()) {
        None => return super::run(primary, work).await,
        Some(replica) => replica.clone(),
    };
    let primary = primary.clone();
    let deadline = Instant::now() + primary.connection_timeout();
    actix_web::web::block(move || {
        let mut conn = primary
            .get_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(StoreError::from)?;
        if replica.wrote_recently(&mut conn, caller)? {
            return work(&mut conn);
        }
        drop(conn);
        match replica.pool.get_timeout(replica.pool.connection_timeout()) {
            Ok(mut conn) => work(&mut conn),
            Err(err) => {
                log::warn!("the read replica gave no connection, reads go to the primary: {err}");
                replica.set(ReplicaHealth::Down, None);
                let mut conn = primary
                    .get_timeout(deadline.saturating_duration_since(Instant::now()))
                    .map_err(StoreError::from)?;
                work(&mut conn)
            }
        }
    })
    .await
    .map_err(StoreError::from)?
}

/// Which server a pooled connection reaches, for `/readyz`.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, QueryableByName, utoipa::ToSchema,
)]
pub struct Reached {
    /// `primary`, or `replica` for a server in recovery.
    #[diesel(sql_type = Text)]
    #[schema(example = "primary")]
    pub server: String,
    /// The database's name.
    #[diesel(sql_type = Text)]
    #[schema(example = "incident_desk")]
    pub database: String,
}

/// The server and database `conn` reaches.
pub fn reached(conn: &mut PgConnection) -> Result<Reached, StoreError> {
    Ok(diesel::sql_query(
        "SELECT CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END AS server, \
                current_database()::text AS database",
    )
    .get_result(conn)?)
}
