DROP INDEX incidents_status_level_due_idx;
DROP INDEX incidents_status_due_idx;
CREATE INDEX incidents_status_idx ON incidents (status);
