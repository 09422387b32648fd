ALTER TABLE kpi_monthly DROP COLUMN satisfaction_count;
ALTER TABLE kpi_monthly DROP COLUMN satisfaction_sum;
DELETE FROM report_summaries;
DROP INDEX follow_ups_completes_idx;
ALTER TABLE follow_ups DROP COLUMN completes;
DROP INDEX incidents_unassigned_idx;
ALTER TABLE incidents DROP COLUMN withdrawal_requested_at;
ALTER TABLE incidents DROP COLUMN user_reported;
