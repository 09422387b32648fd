//! The only place that talks to PostgreSQL.
//!
//! Every query runs through [`run`], which takes a pooled connection inside `web::block`, so
//! neither the query nor the wait for a connection blocks an HTTP worker.

pub mod api_tokens;
pub mod attachments;
pub mod bootstrap;
pub mod calendar;
pub mod chunks;
pub mod combined_statements;
pub mod configuration_items;
pub mod coordination;
pub mod credentials;
pub mod customers;
pub mod demo;
pub mod error;
pub mod escalations;
pub mod events;
pub mod follow_ups;
pub mod idempotency;
pub mod incident_list;
pub mod incident_record;
pub mod incident_text;
pub mod incident_writes;
pub mod incidents;
pub mod knowledge;
pub mod kpi_measures;
pub mod leases;
pub mod listener;
pub mod metrics_counts;
pub mod notifications;
pub mod outbox;
pub mod recurring_defects;
pub mod replica;
pub mod report_summaries;
pub mod schema;
pub mod sign_in_failures;
pub mod sla_policies;
pub mod statistics_report;
pub mod stream;
pub mod suggestions;
pub mod taxonomy;
pub mod ticket_steps;
pub mod users;
pub mod webhooks;

use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::r2d2::{ConnectionManager, ManageConnection, Pool};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

pub use error::StoreError;

/// A database connection, as [`run`] lends it to work outside the store: something to pass to
/// store functions, never to query with directly (only `store` uses Diesel).
pub type Connection = PgConnection;

/// The embedded schema migrations.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A pool of PostgreSQL connections.
pub type DbPool = Pool<PgManager>;

/// Builds the connection pool. Connections are opened lazily, and a request that waits longer
/// than `timeout` for one fails with 503 instead of hanging while the database is down.
pub fn build_pool(database_url: &str, max_size: u32, timeout: Duration) -> DbPool {
    Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(timeout)
        .test_on_check_out(true)
        .build_unchecked(PgManager(ConnectionManager::new(with_network_timeouts(
            database_url,
            timeout,
        ))))
}

/// Diesel's connection manager with a check-out test that costs no round trip.
///
/// A pooled connection that the server closed while it sat idle (a database restart, a
/// terminated backend) already holds the server's goodbye and end-of-file in its socket. Reading
/// what is there without waiting, as libpq does when it looks for notifications, finds that;
/// r2d2 then drops the connection and hands out another one, before anything of the request was
/// sent. A connection that breaks while a request uses it fails that request with 503: a write
/// that may have reached the database is never retried behind the client's back.
#[derive(Debug)]
pub struct PgManager(ConnectionManager<PgConnection>);

impl ManageConnection for PgManager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        self.0.connect()
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        // The first read may only take in the server's last message; the second sees the end.
        for _ in 0..2 {
            if let Some(Err(err)) = conn.notifications_iter().next() {
                return Err(diesel::r2d2::Error::QueryError(err));
            }
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.0.has_broken(conn)
    }
}

/// Adds libpq's `connect_timeout` and `tcp_user_timeout` unless the URL sets them, so that a
/// database behind a broken network fails a request within `timeout` instead of hanging on a
/// half-open connection.
pub fn with_network_timeouts(database_url: &str, timeout: Duration) -> String {
    let Ok(mut url) = url::Url::parse(database_url) else {
        return database_url.to_owned();
    };
    let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let secs = timeout.as_secs().max(1).to_string();
    let millis = timeout.as_millis().max(1000).to_string();
    {
        let mut query = url.query_pairs_mut();
        if !present.iter().any(|k| k == "connect_timeout") {
            query.append_pair("connect_timeout", &secs);
        }
        if !present.iter().any(|k| k == "tcp_user_timeout") {
            query.append_pair("tcp_user_timeout", &millis);
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_timeouts_are_added_but_never_override_the_url() {
        let url = with_network_timeouts("postgres://u@db:5432/desk", Duration::from_secs(3));
        assert_eq!(
            url,
            "postgres://u@db:5432/desk?connect_timeout=3&tcp_user_timeout=3000"
        );
        let kept = with_network_timeouts(
            "postgres://u@db/desk?connect_timeout=10&sslmode=require",
            Duration::from_secs(3),
        );
        assert_eq!(
            kept,
            "postgres://u@db/desk?connect_timeout=10&sslmode=require&tcp_user_timeout=3000"
        );
    }
}

/// Runs `work` with a pooled connection on the blocking thread pool. `work` answers in the
/// caller's error type, which a [`StoreError`] converts into: store functions return
/// `StoreError`, a handler's closure its own error.
pub async fn run<T, E, F>(pool: &DbPool, work: F) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    run_waiting(pool, None, work).await
}

/// As [`run`], answering `Unavailable` when no connection is free within `wait` of this call
/// (the pool's own timeout when `None`), including any time spent waiting for a blocking
/// thread.
pub async fn run_waiting<T, E, F>(pool: &DbPool, wait: Option<Duration>, work: F) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let pool = pool.clone();
    // Counted from now: the task may wait for a blocking thread before it waits for a connection.
    let deadline = Instant::now() + wait.unwrap_or_else(|| pool.connection_timeout());
    actix_web::web::block(move || {
        // Waiting for a free connection blocks too, so it belongs inside the blocking task.
        let mut conn = pool
            .get_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(StoreError::from)?;
        work(&mut conn)
    })
    .await
    .map_err(StoreError::from)?
}

/// Runs `work` in a transaction that is always rolled back, and returns what it decided: a dry
/// run, for asking whether a request would still be allowed without doing it again.
pub fn rolled_back<T, E, F>(conn: &mut PgConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E>,
    E: From<StoreError>,
{
    let mut outcome = None;
    let rolled = diesel::Connection::transaction::<(), diesel::result::Error, _>(conn, |conn| {
        outcome = Some(work(conn));
        Err(diesel::result::Error::RollbackTransaction)
    });
    match (outcome, rolled) {
        (Some(outcome), _) => outcome,
        (None, Err(err)) => Err(E::from(StoreError::from(err))),
        (None, Ok(())) => Err(E::from(StoreError::internal("the dry run did not run"))),
    }
}

/// Runs `work` in a transaction (a savepoint inside one) and answers in `work`'s own error
/// type, for work that mixes store calls with the caller's checks; store functions use Diesel's
/// `transaction` directly.
pub fn transaction<T, E, F>(conn: &mut PgConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E>,
    E: From<StoreError>,
{
    /// Diesel's transaction needs an error it can build from its own; the caller's need not be.
    enum Failed<E> {
        Database(diesel::result::Error),
        Work(E),
    }
    impl<E> From<diesel::result::Error> for Failed<E> {
        fn from(err: diesel::result::Error) -> Self {
            Failed::Database(err)
        }
    }
    diesel::Connection::transaction(conn, |conn| work(conn).map_err(Failed::Work)).map_err(
        |failed| match failed {
            Failed::Database(err) => E::from(StoreError::from(err)),
            Failed::Work(err) => err,
        },
    )
}

/// Keyset pagination: at most `limit` rows after `after` (an id), in id order.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Rows per page.
    pub limit: i64,
    /// Last id of the previous page.
    pub after: Option<i64>,
}

/// A page of a list that polling clients read (SPEC §12): in id order, or in the order of the
/// last change, and only what changed since a time when asked.
#[derive(Debug, Clone, Copy)]
pub struct ChangesPage {
    /// Rows per page.
    pub limit: i64,
    /// Only rows changed at or after this time.
    pub updated_since: Option<chrono::DateTime<chrono::Utc>>,
    /// The order, and where the previous page ended in it.
    pub after: ListPosition,
}

/// An order of a [`ChangesPage`] list, with the last row of the previous page (`None` on the
/// first page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ListPosition {
    /// Oldest first, by id.
    Id(Option<i64>),
    /// Least recently changed first, by `(updated_at, id)`.
    Changed(Option<(chrono::DateTime<chrono::Utc>, i64)>),
}

impl ChangesPage {
    /// Splits the extra row fetched, returning the page and where the next one starts.
    pub fn split<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> (chrono::DateTime<chrono::Utc>, i64),
    ) -> (Vec<T>, Option<ListPosition>) {
        if rows.len() as i64 <= self.limit {
            return (rows, None);
        }
        rows.truncate(self.limit as usize);
        let next = rows.last().map(|row| {
            let (updated_at, id) = key(row);
            match self.after {
                ListPosition::Id(_) => ListPosition::Id(Some(id)),
                ListPosition::Changed(_) => ListPosition::Changed(Some((updated_at, id))),
            }
        });
        (rows, next)
    }
}

/// Splits the extra row fetched to tell whether another page follows.
pub fn split_page<T>(
    mut rows: Vec<T>,
    page: PageRequest,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<i64>) {
    if rows.len() as i64 > page.limit {
        rows.truncate(page.limit as usize);
        let next = rows.last().map(&id);
        (rows, next)
    } else {
        (rows, None)
    }
}

/// 412 when the client's `If-Match` version is not the current one.
pub fn check_version(expected: Option<i32>, current: i32) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != current => Err(StoreError::VersionMismatch { current }),
        _ => Ok(()),
    }
}

/// Rewords a unique-key conflict for people; other errors pass unchanged.
pub fn explain_conflict(err: impl Into<StoreError>, detail: impl FnOnce() -> String) -> StoreError {
    match err.into() {
        StoreError::AlreadyExists => StoreError::Conflict {
            code: "already_exists",
            detail: detail(),
        },
        other => other,
    }
}

/// Parses a code read from the database; a value the code does not know is a bug (500).
pub fn parse_stored<T: std::str::FromStr>(value: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(StoreError::internal)
}

/// Answers whether the database takes queries (readiness).
pub fn ping(conn: &mut PgConnection) -> Result<(), StoreError> {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

/// Escapes `%`, `_` and `\` so user text matches literally inside `ILIKE`.
pub fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
