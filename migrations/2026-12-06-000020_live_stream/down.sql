DROP TABLE stream_tickets;
DROP INDEX webhook_deliveries_event_idx;
DROP TRIGGER outbox_events_notify ON outbox_events;
DROP FUNCTION outbox_events_notify();
DROP INDEX outbox_events_stream_idx;
ALTER TABLE outbox_events DROP COLUMN tx, DROP COLUMN actor_id;
