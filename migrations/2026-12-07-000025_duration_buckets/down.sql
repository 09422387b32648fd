DROP TABLE duration_buckets;
DROP INDEX resolve_times_idx;
CREATE INDEX resolve_times_idx ON resolve_times (measure, month, level, minutes);
ALTER TABLE resolve_times DROP COLUMN bucket;
