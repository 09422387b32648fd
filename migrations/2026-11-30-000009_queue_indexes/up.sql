-- The desk's work queues (`status=new&level=high&sort=due_at`, `status=new&sort=due_at`) read
-- the first page straight off an index in deadline order instead of sorting every open
-- incident of the status.
DROP INDEX incidents_status_idx;
CREATE INDEX incidents_status_due_idx ON incidents (status, due_at, id);
CREATE INDEX incidents_status_level_due_idx ON incidents (status, level, due_at, id);
