//! Counting for 《事件信息统计表》 (SPEC §9): the monthly summaries of the incidents closed in
//! the period's months ([`super::report_summaries`]), and the incidents recorded in it.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Double, Text};

use super::StoreError;
use super::parse_stored;
use super::schema::{customers, incidents};
use crate::domain::report::{Dimension, PairCount, StatisticsCounts};

#[derive(QueryableByName)]
struct SummaryRow {
    #[diesel(sql_type = Text)]
    dimension: String,
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Text)]
    subcode: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
    #[diesel(sql_type = BigInt)]
    breached: i64,
}

#[derive(QueryableByName)]
struct ResolveTimeRow {
    #[diesel(sql_type = Text)]
    measure: String,
    #[diesel(sql_type = Text)]
    level: String,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
    #[diesel(sql_type = Double)]
    mean: f64,
    #[diesel(sql_type = Double)]
    median: f64,
    #[diesel(sql_type = Double)]
    p90: f64,
}

const RESOLVE_TIMES: &str = "\
SELECT measure, level, count(*) AS resolved, avg(minutes) AS mean, \
       percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) AS median, \
       percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) AS p90 \
FROM resolve_times WHERE measure IN ('resolve', 'first_response') \
  AND month >= $1 AND month < $2 GROUP BY measure, level";

fn optional(code: String) -> Option<String> {
    Some(code).filter(|c| !c.is_empty())
}

/// Counts the incidents closed in the local months `[first_month, end_month)` and those
/// recorded in `[start, end)`.
pub fn statistics(
    conn: &mut PgConnection,
    first_month: NaiveDate,
    end_month: NaiveDate,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<StatisticsCounts, StoreError> {
    let rows: Vec<SummaryRow> = diesel::sql_query(
        "SELECT dimension, code, subcode, sum(count)::bigint AS count, \
                sum(breached)::bigint AS breached \
         FROM statistics_monthly WHERE month >= $1 AND month < $2 \
         GROUP BY dimension, code, subcode",
    )
    .bind::<Date, _>(first_month)
    .bind::<Date, _>(end_month)
    .load(conn)?;
    let mut counts = StatisticsCounts {
        reported: incidents::table
            .filter(incidents::created_at.ge(start))
            .filter(incidents::created_at.lt(end))
            .count()
            .get_result(conn)?,
        ..StatisticsCounts::default()
    };
    let mut customer_ids = Vec::new();
    for SummaryRow {
        dimension,
        code,
        subcode,
        count,
        breached,
    } in rows
    {
        let Some(dimension) = Dimension::ALL.into_iter().find(|d| d.as_str() == dimension) else {
            return Err(StoreError::internal(format!(
                "unknown statistics dimension {dimension}"
            )));
        };
        let pair = PairCount {
            code: optional(code.clone()),
            subcode: optional(subcode),
            count,
        };
        match dimension {
            Dimension::Category => counts.by_category.push(pair),
            Dimension::Cause => counts.by_cause.push(pair),
            Dimension::Level => {
                counts.closed += count;
                counts
                    .by_level
                    .push((parse_stored(&code)?, count, breached));
            }
            Dimension::Channel => counts.by_channel.push((parse_stored(&code)?, count)),
            Dimension::Customer => {
                let id = optional(code)
                    .map(|c| parse_stored::<i64>(&c))
                    .transpose()?;
                customer_ids.extend(id);
                counts.by_customer.push((id, None, count));
            }
            Dimension::ResolvingTier => {
                counts.by_resolving_tier.push((parse_stored(&code)?, count))
            }
            Dimension::ClosureCode => counts.by_closure_code.push((parse_stored(&code)?, count)),
            Dimension::Escalation => counts.escalations.push((parse_stored(&code)?, count)),
        }
    }
    let mut names: HashMap<i64, String> = customers::table
        .filter(customers::id.eq_any(&customer_ids))
        .select((customers::id, customers::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    for (id, name, _) in &mut counts.by_customer {
        *name = id.and_then(|id| names.remove(&id));
    }
    let times = diesel::sql_query(RESOLVE_TIMES)
        .bind::<Date, _>(first_month)
        .bind::<Date, _>(end_month)
        .load::<ResolveTimeRow>(conn)?;
    for r in times {
        let row = (parse_stored(&r.level)?, r.resolved, r.mean, r.median, r.p90);
        match r.measure.as_str() {
            super::report_summaries::FIRST_RESPONSE => counts.time_to_first_response.push(row),
            _ => counts.time_to_resolve.push(row),
        }
    }
    Ok(counts)
}
