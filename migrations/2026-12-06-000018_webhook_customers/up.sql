-- A webhook may be limited to one customer's events (SPEC §12): each event records the customer
-- it concerns, and the fan-out to deliveries compares the two.
ALTER TABLE webhooks ADD COLUMN customer_id BIGINT REFERENCES customers (id);
ALTER TABLE outbox_events ADD COLUMN customer_id BIGINT;
-- Events already written: the customer of the incident they carry.
UPDATE outbox_events SET customer_id = (data -> 'incident' ->> 'customer_id')::bigint
    WHERE data -> 'incident' ->> 'customer_id' IS NOT NULL;
