-- The live stream (SPEC §12) reads the outbox: who acted, and a position that readers can
-- trust to be final.
--
-- Ids are drawn when a transaction inserts, not when it commits, so a reader that saw event 11
-- could later meet event 10 committed after it. `tx` is the inserting transaction's id: every
-- transaction older than the oldest one still running (`pg_snapshot_xmin`) has ended, so events
-- up to there, ordered by (tx, id), never gain a predecessor. That order is the stream's.
ALTER TABLE outbox_events
    ADD COLUMN actor_id BIGINT,
    ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();

CREATE INDEX outbox_events_stream_idx ON outbox_events (tx, id);

-- Every instance listens on this channel and reads what is new when it is woken; a notification
-- is sent when the inserting transaction commits, and several in one transaction are folded
-- into one.
CREATE FUNCTION outbox_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_events_notify();

-- Events are pruned oldest first once past the retention, with their finished deliveries.
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- Single-use tickets with which a browser's EventSource (which cannot send headers) opens the
-- stream, for the user and token generation that asked (a password change or sign-out
-- everywhere ends the stream). Only a digest is kept.
CREATE TABLE stream_tickets (
    digest            TEXT PRIMARY KEY,
    user_id           BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_generation  INTEGER NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL
);
