//! Failed sign-ins, per key (`user:<name>` or `address:<ip>`), kept in the database so that every
//! instance counts the same failures and a lock can be lifted from anywhere.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text, Timestamptz};

use super::StoreError;
use super::schema::sign_in_failures;
use crate::store::Connection as PgConnection;

/// A key and its failures, oldest first.
pub type Counted = (String, Vec<DateTime<Utc>>);

/// The failures counted for each of `keys` since `since`, oldest first.
pub fn recent(
    conn: &mut PgConnection,
    keys: &[String],
    since: DateTime<Utc>,
) -> Result<Vec<Counted>, StoreError> {
    let rows: Vec<(String, Vec<DateTime<Utc>>)> = sign_in_failures::table
        .filter(sign_in_failures::key.eq_any(keys))
        .filter(sign_in_failures::last_failed_at.ge(since))
        .select((sign_in_failures::key, sign_in_failures::failures))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(key, failures)| (key, failures.into_iter().filter(|t| *t >= since).collect()))
        .collect())
}

#[derive(QueryableByName)]
struct CountAfter {
    #[diesel(sql_type = Integer)]
    counted: i32,
}

/// Counts a failure of `key` at `now`, keeping at most `keep` failures since `since`; returns
/// how many are now counted.
pub fn record(
    conn: &mut PgConnection,
    key: &str,
    keep: i32,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<i32, StoreError> {
    let counted: CountAfter = diesel::sql_query(
        "INSERT INTO sign_in_failures AS f (key, failures, last_failed_at) \
         VALUES ($1, ARRAY[$4], $4) \
         ON CONFLICT (key) DO UPDATE SET \
             failures = ARRAY(SELECT t FROM (SELECT t FROM unnest(f.failures || $4) AS t \
                                             WHERE t >= $3 ORDER BY t DESC LIMIT $2) kept \
                              ORDER BY t), \
             last_failed_at = $4 \
         RETURNING cardinality(failures) AS counted",
    )
    .bind::<Text, _>(key)
    .bind::<Integer, _>(keep)
    .bind::<Timestamptz, _>(since)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)?;
    Ok(counted.counted)
}

/// Forgets the failures of `key`; returns whether there were any.
pub fn forget(conn: &mut PgConnection, key: &str) -> Result<bool, StoreError> {
    let deleted = diesel::delete(sign_in_failures::table.filter(sign_in_failures::key.eq(key)))
        .execute(conn)?;
    Ok(deleted > 0)
}

/// Deletes keys whose last failure is older than `before`; returns how many.
pub fn prune(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(sign_in_failures::table.filter(sign_in_failures::last_failed_at.lt(before)))
            .execute(conn)?,
    )
}
