//! Counting for the procedure's measures (SPEC §9): one grouped query over closed incidents and
//! one over follow-ups, by calendar period in local time.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp, Timestamptz};

use crate::domain::incident::Tier;
use crate::domain::kpi::{Granularity, KpiCounts};
use crate::domain::level::Level;
use crate::error::AppError;

/// Which incidents count.
#[derive(Debug, Clone, Copy, Default)]
pub struct KpiFilter {
    /// One customer's only.
    pub customer_id: Option<i64>,
    /// One level's only.
    pub level: Option<Level>,
    /// One tier's only.
    pub tier: Option<Tier>,
}

#[derive(QueryableByName)]
struct ClosedRow {
    #[diesel(sql_type = Timestamp)]
    period_start: NaiveDateTime,
    #[diesel(sql_type = BigInt)]
    closed: i64,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
    #[diesel(sql_type = BigInt)]
    resolved_on_time: i64,
}

#[derive(QueryableByName)]
struct FollowUpRow {
    #[diesel(sql_type = Timestamp)]
    period_start: NaiveDateTime,
    #[diesel(sql_type = BigInt)]
    follow_ups: i64,
    #[diesel(sql_type = BigInt)]
    follow_ups_on_time: i64,
}

/// The parameters both counting queries take: `$1` the `date_trunc` unit, `$2` the time zone,
/// `$3`–`$4` the instants, `$5`–`$7` the incident filters.
struct Params<'a> {
    unit: &'static str,
    timezone: &'a str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    customer_id: Option<i64>,
    level: Option<String>,
    tier: Option<String>,
}

/// Runs `select` (up to its `WHERE` conditions on the period) with the incident filters, grouped
/// by period.
fn grouped<R>(
    conn: &mut PgConnection,
    select: &str,
    params: &Params<'_>,
) -> Result<Vec<R>, AppError>
where
    R: QueryableByName<diesel::pg::Pg> + 'static,
{
    Ok(diesel::sql_query(format!(
        "{select} AND ($5::bigint IS NULL OR i.customer_id = $5) \
         AND ($6::text IS NULL OR i.level = $6) AND ($7::text IS NULL OR i.tier = $7) GROUP BY 1"
    ))
    .bind::<Text, _>(params.unit)
    .bind::<Text, _>(params.timezone)
    .bind::<Timestamptz, _>(params.start)
    .bind::<Timestamptz, _>(params.end)
    .bind::<Nullable<BigInt>, _>(params.customer_id)
    .bind::<Nullable<Text>, _>(&params.level)
    .bind::<Nullable<Text>, _>(&params.tier)
    .load(conn)?)
}

/// The counts of every period with any, keyed by the period's local start, for instants in
/// `[start, end)`.
pub fn counts(
    conn: &mut PgConnection,
    granularity: Granularity,
    timezone: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    filter: KpiFilter,
) -> Result<HashMap<NaiveDateTime, KpiCounts>, AppError> {
    let params = Params {
        unit: granularity.trunc_unit(),
        timezone,
        start,
        end,
        customer_id: filter.customer_id,
        level: filter.level.map(|l| l.as_str().to_owned()),
        tier: filter.tier.map(|t| t.as_str().to_owned()),
    };
    let closed: Vec<ClosedRow> = grouped(
        conn,
        "SELECT date_trunc($1, i.closed_at AT TIME ZONE $2) AS period_start, \
                count(*) AS closed, \
                count(*) FILTER (WHERE i.closure_code = 'resolved') AS resolved, \
                count(*) FILTER (WHERE i.closure_code = 'resolved' AND i.resolved_at <= i.due_at) \
                    AS resolved_on_time \
         FROM incidents i \
         WHERE i.closed_at >= $3 AND i.closed_at < $4 AND i.closure_code <> 'duplicate'",
        &params,
    )?;
    let follow_ups: Vec<FollowUpRow> = grouped(
        conn,
        "SELECT date_trunc($1, f.performed_at AT TIME ZONE $2) AS period_start, \
                count(*) AS follow_ups, count(*) FILTER (WHERE f.on_time) AS follow_ups_on_time \
         FROM follow_ups f JOIN incidents i ON i.id = f.incident_id \
         WHERE f.performed_at >= $3 AND f.performed_at < $4",
        &params,
    )?;
    let mut counts: HashMap<NaiveDateTime, KpiCounts> = HashMap::new();
    for row in closed {
        let entry = counts.entry(row.period_start).or_default();
        entry.closed = row.closed;
        entry.resolved = row.resolved;
        entry.resolved_on_time = row.resolved_on_time;
    }
    for row in follow_ups {
        let entry = counts.entry(row.period_start).or_default();
        entry.follow_ups = row.follow_ups;
        entry.follow_ups_on_time = row.follow_ups_on_time;
    }
    Ok(counts)
}
