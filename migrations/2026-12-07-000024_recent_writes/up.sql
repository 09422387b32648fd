-- Read-after-write across instances (SPEC §14): when each caller last wrote, so that any
-- instance sends that caller's reads to the primary for READ_AFTER_WRITE_WINDOW afterwards.
-- Written only when a read replica is configured; one row per caller.
CREATE TABLE recent_writes (
    user_id     BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    written_at  TIMESTAMPTZ NOT NULL
);
