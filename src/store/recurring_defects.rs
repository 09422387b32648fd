//! Recurring defects (SPEC §9, procedure §4.9): the same subcategory and system reported by
//! several organisations within a few days is a system defect for the weekly review.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::StoreError;
use super::parse_stored;
use super::schema::incidents;
use crate::domain::incident::Status;

/// A subcategory and system reported by `customers` organisations since the window began.
#[derive(Debug, Clone, QueryableByName)]
pub struct RecurringPair {
    /// Subcategory code.
    #[diesel(sql_type = Text)]
    pub subcategory: String,
    /// System.
    #[diesel(sql_type = Text)]
    pub source_system: String,
    /// How many organisations reported it.
    #[diesel(sql_type = BigInt)]
    pub customers: i64,
}

/// An incident behind a pair.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct RecurringIncident {
    pub id: i64,
    pub number: String,
    pub title: String,
    pub customer_id: Option<i64>,
    pub status: Status,
    pub created_at: DateTime<Utc>,
}

type IncidentTuple = (i64, String, String, Option<i64>, String, DateTime<Utc>);

/// Pairs reported since `since` by at least `min_customers` organisations, most widespread
/// first, with their incidents in order of creation.
pub fn recurring(
    conn: &mut PgConnection,
    since: DateTime<Utc>,
    min_customers: i64,
) -> Result<Vec<(RecurringPair, Vec<RecurringIncident>)>, StoreError> {
    let pairs: Vec<RecurringPair> = diesel::sql_query(
        "SELECT subcategory, source_system, count(DISTINCT customer_id) AS customers \
         FROM incidents \
         WHERE created_at >= $1 AND subcategory IS NOT NULL AND source_system IS NOT NULL \
           AND customer_id IS NOT NULL \
         GROUP BY subcategory, source_system \
         HAVING count(DISTINCT customer_id) >= $2 \
         ORDER BY customers DESC, subcategory, source_system",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .bind::<BigInt, _>(min_customers)
    .load(conn)?;
    // The incidents of every pair in one pass over the window (a superset, sorted out here),
    // not one query per pair.
    let subcategories: Vec<&str> = pairs.iter().map(|p| p.subcategory.as_str()).collect();
    let systems: Vec<&str> = pairs.iter().map(|p| p.source_system.as_str()).collect();
    let rows: Vec<(Option<String>, Option<String>, IncidentTuple)> = incidents::table
        .filter(incidents::created_at.ge(since))
        .filter(incidents::subcategory.eq_any(&subcategories))
        .filter(incidents::source_system.eq_any(&systems))
        .filter(incidents::customer_id.is_not_null())
        .order((incidents::created_at.asc(), incidents::id.asc()))
        .select((
            incidents::subcategory,
            incidents::source_system,
            (
                incidents::id,
                incidents::number,
                incidents::title,
                incidents::customer_id,
                incidents::status,
                incidents::created_at,
            ),
        ))
        .load(conn)?;
    let mut by_pair: HashMap<(String, String), Vec<RecurringIncident>> = HashMap::new();
    for (subcategory, system, (id, number, title, customer_id, status, created_at)) in rows {
        let (Some(subcategory), Some(system)) = (subcategory, system) else {
            continue;
        };
        by_pair
            .entry((subcategory, system))
            .or_default()
            .push(RecurringIncident {
                status: parse_stored(&status)?,
                id,
                number,
                title,
                customer_id,
                created_at,
            });
    }
    Ok(pairs
        .into_iter()
        .map(|pair| {
            let key = (pair.subcategory.clone(), pair.source_system.clone());
            let incidents = by_pair.remove(&key).unwrap_or_default();
            (pair, incidents)
        })
        .collect())
}
