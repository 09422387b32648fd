-- Escalations (SPEC §5), the outbox of events with webhook subscriptions and deliveries (§10),
-- and the business calendar.

CREATE TABLE escalations (
    id                BIGSERIAL PRIMARY KEY,
    incident_id       BIGINT NOT NULL REFERENCES incidents (id),
    kind              TEXT NOT NULL CHECK (kind IN ('functional', 'priority', 'hierarchical')),
    trigger           TEXT CHECK (trigger IN ('onsite_urgent', 'data_upload', 'manual', 'sla_warning', 'sla_breach')),
    reason            TEXT,
    from_tier         TEXT NOT NULL,
    to_tier           TEXT NOT NULL,
    from_level        TEXT NOT NULL,
    to_level          TEXT NOT NULL,
    from_assignee_id  BIGINT REFERENCES users (id),
    to_assignee_id    BIGINT REFERENCES users (id),
    -- The deadline an SLA escalation is about.
    due_at            TIMESTAMPTZ,
    created_by        BIGINT REFERENCES users (id),
    created_at        TIMESTAMPTZ NOT NULL,
    acknowledged_by   BIGINT REFERENCES users (id),
    acknowledged_at   TIMESTAMPTZ,
    CONSTRAINT escalations_sla_has_deadline CHECK (trigger NOT IN ('sla_warning', 'sla_breach') OR due_at IS NOT NULL),
    CONSTRAINT escalations_ack_pair CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL))
);
CREATE INDEX escalations_incident_idx ON escalations (incident_id, id);
CREATE INDEX escalations_queue_idx ON escalations (acknowledged_at, id);
-- The SLA watcher escalates each incident at most once per trigger and deadline, however many
-- server instances run it.
CREATE UNIQUE INDEX escalations_sla_once ON escalations (incident_id, trigger, due_at)
    WHERE trigger IN ('sla_warning', 'sla_breach');

CREATE TABLE webhooks (
    id          BIGSERIAL PRIMARY KEY,
    url         TEXT NOT NULL CHECK (url ~ '^https?://'),
    events      TEXT[] NOT NULL CHECK (cardinality(events) >= 1),
    secret      TEXT NOT NULL CHECK (char_length(secret) >= 16),
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);

-- Events, written in the same transaction as the change they describe.
CREATE TABLE outbox_events (
    id           BIGSERIAL PRIMARY KEY,
    event_type   TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    data         JSONB NOT NULL
);

-- One delivery per event and subscribed webhook, fanned out with the event.
CREATE TABLE webhook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    webhook_id       BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         BIGINT NOT NULL REFERENCES outbox_events (id),
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    -- A worker that claimed the delivery owns it until then; a crashed worker's claim expires.
    locked_until     TIMESTAMPTZ,
    last_status_code INTEGER,
    last_error       TEXT,
    delivered_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id);

CREATE TABLE webhook_delivery_attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at TIMESTAMPTZ NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX webhook_delivery_attempts_delivery_idx ON webhook_delivery_attempts (delivery_id, id);

-- Working hours per ISO weekday (1 = Monday) and holidays, in TIMEZONE. One row.
CREATE TABLE business_calendar (
    id          SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    enabled     BOOLEAN NOT NULL DEFAULT FALSE,
    hours       JSONB NOT NULL DEFAULT '[]',
    holidays    DATE[] NOT NULL DEFAULT '{}',
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    version     INTEGER NOT NULL DEFAULT 1
);
INSERT INTO business_calendar (id) VALUES (1);
