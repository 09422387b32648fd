DROP INDEX incidents_unassigned_idx;
ALTER TABLE incidents DROP COLUMN withdrawal_requested_at;
ALTER TABLE incidents DROP COLUMN user_reported;
