-- The statistics report's median and 90th percentile over a year without sorting a year of
-- durations (SPEC §9). Each duration keeps its bucket (`domain::report::duration_bucket`: whole
-- minutes below 64, above that 32 buckets per doubling), and `duration_buckets` keeps the
-- monthly count and sum per bucket, added in the closing transaction like the other summaries.
-- The report sums the counts, finds the bucket holding each wanted rank and reads only that
-- bucket's durations in order: the exact `percentile_cont` at a fraction of the cost.
ALTER TABLE resolve_times ADD COLUMN bucket INTEGER;
-- The same integer arithmetic as the domain's function: the whole minutes' bit length, then
-- their six leading bits.
UPDATE resolve_times SET bucket = CASE
    WHEN w.whole < 64 THEN w.whole
    ELSE (w.bits - 6) * 32 + (w.whole >> (w.bits - 6))::integer END
FROM (SELECT ctid AS row_id, whole, length(ltrim(whole::bit(64)::text, '0')) AS bits
      FROM (SELECT ctid, greatest(floor(minutes), 0)::bigint AS whole FROM resolve_times) AS t) AS w
WHERE resolve_times.ctid = w.row_id;
ALTER TABLE resolve_times ALTER COLUMN bucket SET NOT NULL;
DROP INDEX resolve_times_idx;
CREATE INDEX resolve_times_idx ON resolve_times (measure, level, bucket, month) INCLUDE (minutes);

CREATE TABLE duration_buckets (
    month        DATE NOT NULL,
    measure      TEXT NOT NULL,
    level        TEXT NOT NULL,
    bucket       INTEGER NOT NULL,
    count        BIGINT NOT NULL,
    minutes_sum  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (month, measure, level, bucket)
);
INSERT INTO duration_buckets (month, measure, level, bucket, count, minutes_sum)
SELECT month, measure, level, bucket, count(*), sum(minutes)
FROM resolve_times GROUP BY month, measure, level, bucket;
