//! Counting for 《事件信息统计表》 (SPEC §9): the incidents closed in `[start, end)`, every
//! dimension in one grouped pass over the closing-time index.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};

use super::parse_stored;
use super::schema::{customers, incidents};
use crate::domain::report::{PairCount, StatisticsCounts};
use crate::error::AppError;

#[derive(QueryableByName)]
struct DimensionRow {
    #[diesel(sql_type = Text)]
    dimension: String,
    #[diesel(sql_type = Nullable<Text>)]
    code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    subcode: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    customer_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    count: i64,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
    #[diesel(sql_type = BigInt)]
    breached: i64,
}

#[derive(QueryableByName)]
struct ResolveTimeRow {
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

#[derive(QueryableByName)]
struct KindRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

// One pass, one grouping set per table. `late` is the list filter `sla_breached`'s rule for a
// closed incident: resolved, or never resolved and closed, after its deadline.
const BY_DIMENSION: &str = "\
SELECT CASE WHEN GROUPING(category) = 0 THEN 'category' WHEN GROUPING(cause) = 0 THEN 'cause' \
            WHEN GROUPING(level) = 0 THEN 'level' WHEN GROUPING(channel) = 0 THEN 'channel' \
            WHEN GROUPING(customer_id) = 0 THEN 'customer' WHEN GROUPING(tier) = 0 THEN 'tier' \
            ELSE 'closure_code' END AS dimension, \
       COALESCE(category, cause, level, channel, tier, closure_code) AS code, \
       COALESCE(subcategory, subcause) AS subcode, customer_id, count(*) AS count, \
       count(*) FILTER (WHERE closure_code = 'resolved') AS resolved, \
       count(*) FILTER (WHERE COALESCE(resolved_at, closed_at) > due_at) AS breached \
FROM incidents WHERE closed_at >= $1 AND closed_at < $2 \
GROUP BY GROUPING SETS ((category, subcategory), (cause, subcause), (level), (channel), \
                        (customer_id), (tier), (closure_code))";

const RESOLVE_TIMES: &str = "\
SELECT level, count(*) AS resolved, avg(minutes) AS mean, \
       percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) AS median, \
       percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) AS p90 \
FROM (SELECT level, extract(epoch FROM resolved_at - created_at)::float8 / 60 AS minutes \
      FROM incidents WHERE closed_at >= $1 AND closed_at < $2 AND resolved_at IS NOT NULL \
        AND closure_code <> 'duplicate') AS r \
GROUP BY level";

const ESCALATIONS: &str = "\
SELECT e.kind, count(*) AS count FROM incidents i JOIN escalations e ON e.incident_id = i.id \
WHERE i.closed_at >= $1 AND i.closed_at < $2 GROUP BY e.kind";

/// Counts the incidents closed in `[start, end)` for the statistics report.
pub fn statistics(
    conn: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<StatisticsCounts, AppError> {
    let in_period = |sql: &'static str| {
        diesel::sql_query(sql)
            .bind::<Timestamptz, _>(start)
            .bind::<Timestamptz, _>(end)
    };
    let rows: Vec<DimensionRow> = in_period(BY_DIMENSION).load(conn)?;
    let mut counts = StatisticsCounts {
        reported: incidents::table
            .filter(incidents::created_at.ge(start))
            .filter(incidents::created_at.lt(end))
            .count()
            .get_result(conn)?,
        ..StatisticsCounts::default()
    };
    let mut customer_ids = Vec::new();
    for row in rows {
        let pair = || PairCount {
            code: row.code.clone(),
            subcode: row.subcode.clone(),
            count: row.count,
        };
        let code = row.code.as_deref().unwrap_or_default();
        match row.dimension.as_str() {
            "category" => counts.by_category.push(pair()),
            "cause" => counts.by_cause.push(pair()),
            "level" => {
                counts.closed += row.count;
                counts
                    .by_level
                    .push((parse_stored(code)?, row.count, row.breached));
            }
            "channel" => counts.by_channel.push((parse_stored(code)?, row.count)),
            "customer" => {
                customer_ids.extend(row.customer_id);
                counts.by_customer.push((row.customer_id, None, row.count));
            }
            "tier" => counts
                .by_resolving_tier
                .push((parse_stored(code)?, row.resolved)),
            _ => counts
                .by_closure_code
                .push((parse_stored(code)?, row.count)),
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
    counts.time_to_resolve = in_period(RESOLVE_TIMES)
        .load::<ResolveTimeRow>(conn)?
        .into_iter()
        .map(|r| Ok((parse_stored(&r.level)?, r.resolved, r.mean, r.median, r.p90)))
        .collect::<Result<_, AppError>>()?;
    counts.escalations = in_period(ESCALATIONS)
        .load::<KindRow>(conn)?
        .into_iter()
        .map(|r| Ok((parse_stored(&r.kind)?, r.count)))
        .collect::<Result<_, AppError>>()?;
    Ok(counts)
}
