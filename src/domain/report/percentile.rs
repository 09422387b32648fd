//! The median and 90th percentile of the report's durations (SPEC §9), exact over a year of
//! closures without sorting a year of durations. Each duration is kept with its bucket, a
//! class of whole minutes on a logarithmic scale, and the store keeps the monthly count per
//! bucket. The counts say which buckets hold the wanted ranks; only those buckets' durations are
//! read in order. The answer is PostgreSQL's `percentile_cont` over all durations.

/// Buckets per doubling above [`LINEAR_BUCKETS`] minutes.
const BUCKETS_PER_DOUBLING: u32 = 32;
/// Durations below this many whole minutes have a bucket each.
const LINEAR_BUCKETS: u64 = 2 * BUCKETS_PER_DOUBLING as u64;

/// The bucket of a duration of `minutes`: the whole minutes below 64, above that their
/// doubling and six leading bits (32 buckets per doubling, each 1.6–3.1 % wide). Integer
/// arithmetic on the whole minutes, so it never decreases as the duration grows.
pub fn duration_bucket(minutes: f64) -> i32 {
    // `as` saturates: negative and NaN durations fall into bucket 0.
    let whole = minutes.floor() as u64;
    if whole < LINEAR_BUCKETS {
        return whole as i32;
    }
    let shift = (u64::BITS - whole.leading_zeros()) - (BUCKETS_PER_DOUBLING.ilog2() + 1);
    (shift * BUCKETS_PER_DOUBLING) as i32 + (whole >> shift) as i32
}

/// The two neighbouring ranks (0-based, in ascending order) `percentile_cont(fraction)` over
/// `count` values interpolates between, and the weight of the second; `None` for no values.
pub fn percentile_ranks(count: i64, fraction: f64) -> Option<(i64, i64, f64)> {
    if count <= 0 {
        return None;
    }
    let position = fraction.clamp(0.0, 1.0) * (count - 1) as f64;
    let first = position.floor() as i64;
    let second = position.ceil() as i64;
    Some((first, second, position - first as f64))
}

/// Which durations to read for the ranks `first..=second`: those of buckets `from..=to` in
/// ascending order, skipping `skip` of them and taking `take`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketRead {
    /// The bucket holding the first rank.
    pub from: i32,
    /// The bucket holding the second rank.
    pub to: i32,
    /// Durations of `from` ranked before the first rank.
    pub skip: i64,
    /// Durations to read: 1 or 2.
    pub take: i64,
}

/// Where the ranks `first..=second` lie among `buckets`: (bucket, count) in ascending bucket
/// order, counts summed over the period; `None` when the ranks lie beyond them.
pub fn locate(buckets: &[(i32, i64)], first: i64, second: i64) -> Option<BucketRead> {
    let mut before = 0;
    let mut from = None;
    for &(bucket, count) in buckets {
        if from.is_none() && first < before + count {
            from = Some((bucket, first - before));
        }
        if let Some((from, skip)) = from
            && second < before + count
        {
            return Some(BucketRead {
                from,
                to: bucket,
                skip,
                take: second - first + 1,
            });
        }
        before += count;
    }
    None
}

/// `percentile_cont`'s interpolation between the durations read for ranks `first..=second`.
pub fn interpolate(values: &[f64], weight: f64) -> Option<f64> {
    match values {
        [only] => Some(*only),
        [first, second] => Some(first + weight * (second - first)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// PostgreSQL's `percentile_cont` over sorted `values`.
    fn percentile_cont(values: &[f64], fraction: f64) -> f64 {
        let position = fraction * (values.len() - 1) as f64;
        let (first, second) = (position.floor() as usize, position.ceil() as usize);
        values[first] + (position - first as f64) * (values[second] - values[first])
    }

    /// The percentile the way the store computes it: bucket counts, then one bucket range read.
    fn by_buckets(values: &[f64], fraction: f64) -> Option<f64> {
        let mut counts: std::collections::BTreeMap<i32, i64> = Default::default();
        for v in values {
            *counts.entry(duration_bucket(*v)).or_default() += 1;
        }
        let buckets: Vec<(i32, i64)> = counts.into_iter().collect();
        let (first, second, weight) = percentile_ranks(values.len() as i64, fraction)?;
        let read = locate(&buckets, first, second)?;
        let mut chosen: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| (read.from..=read.to).contains(&duration_bucket(*v)))
            .collect();
        chosen.sort_by(f64::total_cmp);
        let taken: Vec<f64> = chosen
            .into_iter()
            .skip(read.skip as usize)
            .take(read.take as usize)
            .collect();
        interpolate(&taken, weight)
    }

    #[test]
    fn buckets_are_whole_minutes_then_logarithmic() {
        assert_eq!(duration_bucket(0.0), 0);
        assert_eq!(duration_bucket(0.99), 0);
        assert_eq!(duration_bucket(-3.0), 0);
        assert_eq!(duration_bucket(f64::NAN), 0);
        assert_eq!(duration_bucket(63.9), 63);
        assert_eq!(duration_bucket(64.0), 64);
        assert_eq!(duration_bucket(65.9), 64);
        assert_eq!(duration_bucket(66.0), 65);
        assert_eq!(duration_bucket(127.0), 95);
        assert_eq!(duration_bucket(128.0), 96);
        // A year, 525 600 minutes: 20 bits, shifted by 14 to its six leading ones (32).
        assert_eq!(duration_bucket(525_600.0), 14 * 32 + 32);
    }

    #[test]
    fn ranks_follow_percentile_cont() {
        assert_eq!(percentile_ranks(0, 0.5), None);
        assert_eq!(percentile_ranks(1, 0.9), Some((0, 0, 0.0)));
        assert_eq!(percentile_ranks(4, 0.5), Some((1, 2, 0.5)));
        let (first, second, weight) = percentile_ranks(11, 0.9).unwrap();
        assert_eq!((first, second), (9, 9));
        assert_eq!(weight, 0.0);
    }

    #[test]
    fn locating_spans_buckets_when_the_ranks_straddle_them() {
        let buckets = [(3, 2), (7, 1), (9, 4)];
        assert_eq!(
            locate(&buckets, 1, 2),
            Some(BucketRead {
                from: 3,
                to: 7,
                skip: 1,
                take: 2
            })
        );
        assert_eq!(
            locate(&buckets, 4, 5),
            Some(BucketRead {
                from: 9,
                to: 9,
                skip: 1,
                take: 2
            })
        );
        assert_eq!(locate(&buckets, 7, 7), None);
    }

    #[test]
    fn a_median_between_two_values_is_their_mean() {
        assert_eq!(by_buckets(&[5.0, 10.0], 0.5), Some(7.5));
        assert_eq!(
            by_buckets(&[1.0, 100.0, 1_000.0, 10_000.0], 0.5),
            Some(550.0)
        );
    }

    proptest! {
        #[test]
        fn buckets_never_decrease(a in 0.0f64..1e9, b in 0.0f64..1e9) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(duration_bucket(low) <= duration_bucket(high));
        }

        #[test]
        fn bucketed_percentiles_equal_percentile_cont(
            mut values in prop::collection::vec(0.0f64..200_000.0, 1..400),
            fraction in prop::sample::select(vec![0.0, 0.5, 0.9, 1.0]),
        ) {
            let expected = {
                values.sort_by(f64::total_cmp);
                percentile_cont(&values, fraction)
            };
            prop_assert_eq!(by_buckets(&values, fraction), Some(expected));
        }
    }
}
