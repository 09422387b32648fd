//! Counting for 《事件信息统计表》 (SPEC §9): the monthly summaries of the incidents closed in
//! the period's months ([`super::report_summaries`]), and the incidents recorded in it.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Double, Integer, Text};

use super::StoreError;
use super::parse_stored;
use super::schema::{customers, incidents};
use crate::domain::report::{
    Dimension, PairCount, StatisticsCounts, interpolate, locate, percentile_ranks,
};

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

/// A bucket of one measure and level's durations, summed over the period's months.
#[derive(QueryableByName)]
struct BucketRow {
    #[diesel(sql_type = Text)]
    measure: String,
    #[diesel(sql_type = Text)]
    level: String,
    #[diesel(sql_type = Integer)]
    bucket: i32,
    #[diesel(sql_type = BigInt)]
    count: i64,
    #[diesel(sql_type = Double)]
    minutes_sum: f64,
}

const BUCKET_COUNTS: &str = "\
SELECT measure, level, bucket, sum(count)::bigint AS count, sum(minutes_sum) AS minutes_sum \
FROM duration_buckets WHERE month >= $1 AND month < $2 \
GROUP BY measure, level, bucket ORDER BY measure, level, bucket";

/// A duration read for the `read`-th (from 1) [`BucketRead`].
#[derive(QueryableByName)]
struct ReadDuration {
    #[diesel(sql_type = BigInt)]
    read: i64,
    #[diesel(sql_type = Double)]
    minutes: f64,
}

/// Every wanted rank's durations in one statement: per read, its buckets' durations of the
/// period in order (an index range over measure, level and bucket), skipped and taken.
const READ_DURATIONS: &str = "\
SELECT w.read, d.minutes \
FROM unnest($1::text[], $2::text[], $3::int4[], $4::int4[], $5::int8[], $6::int8[]) \
     WITH ORDINALITY AS w(measure, level, from_bucket, to_bucket, skip, take, read) \
CROSS JOIN LATERAL (SELECT r.minutes FROM resolve_times r \
    WHERE r.measure = w.measure AND r.level = w.level \
      AND r.bucket BETWEEN w.from_bucket AND w.to_bucket AND r.month >= $7 AND r.month < $8 \
    ORDER BY r.minutes OFFSET w.skip LIMIT w.take) AS d \
ORDER BY w.read, d.minutes";

/// One measure and level's durations in the period, as bucket counts.
struct Distribution {
    measure: String,
    level: String,
    buckets: Vec<(i32, i64)>,
    count: i64,
    minutes_sum: f64,
}

/// The percentiles the report shows: median and 90th.
const PERCENTILES: [f64; 2] = [0.5, 0.9];

/// One measure and level's durations in the period, summed up.
struct DurationSummary {
    measure: String,
    level: String,
    count: i64,
    mean: f64,
    median: f64,
    p90: f64,
}

/// The durations of the months `[first_month, end_month)` by measure and level, each
/// percentile exactly `percentile_cont`'s.
fn duration_percentiles(
    conn: &mut PgConnection,
    first_month: NaiveDate,
    end_month: NaiveDate,
) -> Result<Vec<DurationSummary>, StoreError> {
    let rows = diesel::sql_query(BUCKET_COUNTS)
        .bind::<Date, _>(first_month)
        .bind::<Date, _>(end_month)
        .load::<BucketRow>(conn)?;
    let mut distributions: Vec<Distribution> = Vec::new();
    for row in rows {
        let same = distributions
            .last()
            .is_some_and(|d| d.measure == row.measure && d.level == row.level);
        if !same {
            distributions.push(Distribution {
                measure: row.measure,
                level: row.level,
                buckets: Vec::new(),
                count: 0,
                minutes_sum: 0.0,
            });
        }
        let last = distributions.last_mut().expect("pushed above");
        last.buckets.push((row.bucket, row.count));
        last.count += row.count;
        last.minutes_sum += row.minutes_sum;
    }
    // One read per distribution and percentile, in that order; the weight interpolates.
    let mut weights = Vec::new();
    let (mut measures, mut levels, mut froms, mut tos, mut skips, mut takes) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for d in &distributions {
        for fraction in PERCENTILES {
            let (first, second, weight) = percentile_ranks(d.count, fraction)
                .ok_or_else(|| StoreError::internal("a duration bucket without durations"))?;
            let read = locate(&d.buckets, first, second)
                .ok_or_else(|| StoreError::internal("a percentile beyond its bucket counts"))?;
            measures.push(d.measure.clone());
            levels.push(d.level.clone());
            froms.push(read.from);
            tos.push(read.to);
            skips.push(read.skip);
            takes.push(read.take);
            weights.push(weight);
        }
    }
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); weights.len()];
    if !weights.is_empty() {
        for found in diesel::sql_query(READ_DURATIONS)
            .bind::<Array<Text>, _>(&measures)
            .bind::<Array<Text>, _>(&levels)
            .bind::<Array<Integer>, _>(&froms)
            .bind::<Array<Integer>, _>(&tos)
            .bind::<Array<BigInt>, _>(&skips)
            .bind::<Array<BigInt>, _>(&takes)
            .bind::<Date, _>(first_month)
            .bind::<Date, _>(end_month)
            .load::<ReadDuration>(conn)?
        {
            let slot = usize::try_from(found.read - 1)
                .ok()
                .and_then(|i| values.get_mut(i))
                .ok_or_else(|| StoreError::internal("a duration read out of range"))?;
            slot.push(found.minutes);
        }
    }
    let mut percentiles = values.iter().zip(&weights).map(|(v, w)| {
        interpolate(v, *w)
            .ok_or_else(|| StoreError::internal("the durations disagree with their bucket counts"))
    });
    let mut out = Vec::with_capacity(distributions.len());
    for d in distributions {
        let median = percentiles.next().expect("one per percentile")?;
        let p90 = percentiles.next().expect("one per percentile")?;
        out.push(DurationSummary {
            mean: d.minutes_sum / d.count as f64,
            measure: d.measure,
            level: d.level,
            count: d.count,
            median,
            p90,
        });
    }
    Ok(out)
}

fn optional(code: String) -> Option<String> {
    Some(code).filter(|c| !c.is_empty())
}

/// The incidents recorded in `[start, end)`: the report's `reported`.
pub fn reported(
    conn: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(incidents::table
        .filter(incidents::created_at.ge(start))
        .filter(incidents::created_at.lt(end))
        .count()
        .get_result(conn)?)
}

/// Counts the incidents closed in the local months `[first_month, end_month)`, by every table
/// of the report, and their durations; `reported` and the monthly rates are read apart.
pub fn closed_counts(
    conn: &mut PgConnection,
    first_month: NaiveDate,
    end_month: NaiveDate,
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
    let mut counts = StatisticsCounts::default();
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
    // The bucket counts and the durations read by them come from one snapshot, so a closure
    // committed between the two statements cannot shift a rank.
    let durations = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| duration_percentiles(conn, first_month, end_month))?;
    for d in durations {
        let row = (parse_stored(&d.level)?, d.count, d.mean, d.median, d.p90);
        match d.measure.as_str() {
            super::report_summaries::FIRST_RESPONSE => counts.time_to_first_response.push(row),
            _ => counts.time_to_resolve.push(row),
        }
    }
    Ok(counts)
}
