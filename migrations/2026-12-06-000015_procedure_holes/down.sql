ALTER TABLE idempotency_keys DROP COLUMN claim_token;
DROP INDEX resolve_times_idx;
DELETE FROM resolve_times WHERE measure <> 'resolve';
ALTER TABLE resolve_times DROP COLUMN measure;
CREATE INDEX resolve_times_idx ON resolve_times (month, level, minutes);
TRUNCATE kpi_monthly;
ALTER TABLE kpi_monthly DROP CONSTRAINT kpi_monthly_key;
ALTER TABLE kpi_monthly DROP COLUMN assignee_id;
ALTER TABLE kpi_monthly ADD CONSTRAINT kpi_monthly_key
    UNIQUE NULLS NOT DISTINCT (month, customer_id, level, tier);
ALTER TABLE kpi_monthly DROP COLUMN satisfaction_count;
ALTER TABLE kpi_monthly DROP COLUMN satisfaction_sum;
DELETE FROM report_summaries;
DROP INDEX follow_ups_completes_idx;
ALTER TABLE follow_ups DROP COLUMN completes;
DROP INDEX incidents_unassigned_idx;
ALTER TABLE incidents DROP COLUMN withdrawal_requested_at;
ALTER TABLE incidents DROP COLUMN user_reported;
