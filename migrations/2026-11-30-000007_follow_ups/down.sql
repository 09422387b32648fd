DROP INDEX incidents_closed_idx;
DROP TABLE follow_ups;
DROP INDEX incidents_follow_up_due_idx;
ALTER TABLE incidents DROP COLUMN follow_up_due_at;
