ALTER TABLE outbox_events DROP COLUMN customer_id;
ALTER TABLE webhooks DROP COLUMN customer_id;
