//! Counting for the procedure's measures (SPEC §9): one grouped query over the monthly
//! summaries, by calendar period in local time.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamp};

use super::StoreError;
use crate::domain::incident::Tier;
use crate::domain::kpi::{Granularity, KpiCounts};
use crate::domain::level::Level;

/// Which incidents count.
#[derive(Debug, Clone, Copy, Default)]
pub struct KpiFilter {
    /// One customer's only.
    pub customer_id: Option<i64>,
    /// One level's only.
    pub level: Option<Level>,
    /// One tier's only.
    pub tier: Option<Tier>,
    /// Those one engineer was assigned when they were closed.
    pub assignee_id: Option<i64>,
}

#[derive(QueryableByName)]
struct PeriodRow {
    #[diesel(sql_type = Timestamp)]
    period_start: NaiveDateTime,
    #[diesel(sql_type = BigInt)]
    closed: i64,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
    #[diesel(sql_type = BigInt)]
    resolved_on_time: i64,
    #[diesel(sql_type = BigInt)]
    follow_ups: i64,
    #[diesel(sql_type = BigInt)]
    follow_ups_on_time: i64,
    #[diesel(sql_type = BigInt)]
    satisfaction_sum: i64,
    #[diesel(sql_type = BigInt)]
    satisfaction_count: i64,
}

/// The counts of every period with any, keyed by the period's local start, for the local
/// months from `first_month` up to (not including) `end_month`, read from the monthly
/// summaries the closing transactions keep ([`super::report_summaries`]).
pub fn counts(
    conn: &mut PgConnection,
    granularity: Granularity,
    first_month: NaiveDate,
    end_month: NaiveDate,
    filter: KpiFilter,
) -> Result<HashMap<NaiveDateTime, KpiCounts>, StoreError> {
    let rows: Vec<PeriodRow> = diesel::sql_query(
        "SELECT date_trunc($1, month::timestamp) AS period_start, \
                sum(closed)::bigint AS closed, sum(resolved)::bigint AS resolved, \
                sum(resolved_on_time)::bigint AS resolved_on_time, \
                sum(follow_ups)::bigint AS follow_ups, \
                sum(follow_ups_on_time)::bigint AS follow_ups_on_time, \
                sum(satisfaction_sum)::bigint AS satisfaction_sum, \
                sum(satisfaction_count)::bigint AS satisfaction_count \
         FROM kpi_monthly \
         WHERE month >= $2 AND month < $3 AND ($4::bigint IS NULL OR customer_id = $4) \
           AND ($5::text IS NULL OR level = $5) AND ($6::text IS NULL OR tier = $6) \
           AND ($7::bigint IS NULL OR assignee_id = $7) \
         GROUP BY 1",
    )
    .bind::<Text, _>(granularity.trunc_unit())
    .bind::<Date, _>(first_month)
    .bind::<Date, _>(end_month)
    .bind::<Nullable<BigInt>, _>(filter.customer_id)
    .bind::<Nullable<Text>, _>(filter.level.map(|l| l.as_str()))
    .bind::<Nullable<Text>, _>(filter.tier.map(|t| t.as_str()))
    .bind::<Nullable<BigInt>, _>(filter.assignee_id)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.period_start,
                KpiCounts {
                    closed: row.closed,
                    resolved: row.resolved,
                    resolved_on_time: row.resolved_on_time,
                    follow_ups: row.follow_ups,
                    follow_ups_on_time: row.follow_ups_on_time,
                    satisfaction_sum: row.satisfaction_sum,
                    satisfaction_count: row.satisfaction_count,
                },
            )
        })
        .collect())
}
