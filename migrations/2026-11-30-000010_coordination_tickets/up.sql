-- Coordination tickets (SPEC §6): 《客户问题协调单》 (customer_issue, to the operations staff) and
-- 《问题协调单》 (problem, to problem management), each on an incident, with a history of its own.
CREATE TABLE coordination_tickets (
    id             BIGSERIAL PRIMARY KEY,
    incident_id    BIGINT NOT NULL REFERENCES incidents (id),
    kind           TEXT NOT NULL CHECK (kind IN ('customer_issue', 'problem')),
    status         TEXT NOT NULL CHECK (status IN ('open', 'accepted', 'resolved', 'cancelled')),
    assignee_id    BIGINT NOT NULL REFERENCES users (id),
    summary        TEXT NOT NULL CHECK (char_length(summary) BETWEEN 1 AND 200),
    details        TEXT NOT NULL DEFAULT '' CHECK (char_length(details) <= 10000),
    analysis       TEXT,
    process        TEXT,
    result         TEXT,
    root_cause     TEXT,
    change_ref     TEXT,
    cancel_reason  TEXT,
    created_by     BIGINT NOT NULL REFERENCES users (id),
    created_at     TIMESTAMPTZ NOT NULL,
    accepted_at    TIMESTAMPTZ,
    resolved_at    TIMESTAMPTZ,
    cancelled_at   TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    CONSTRAINT coordination_resolution CHECK (
        status <> 'resolved' OR (analysis IS NOT NULL AND process IS NOT NULL AND result IS NOT NULL)
    )
);
CREATE INDEX coordination_tickets_incident_idx ON coordination_tickets (incident_id, id);
CREATE INDEX coordination_tickets_assignee_idx ON coordination_tickets (assignee_id, id);
CREATE INDEX coordination_tickets_status_idx ON coordination_tickets (status, id);
-- What blocks resolving an incident, found without reading its other tickets.
CREATE INDEX coordination_tickets_blocking_idx ON coordination_tickets (incident_id)
    WHERE kind = 'customer_issue' AND status IN ('open', 'accepted');

CREATE TABLE coordination_ticket_history (
    id          BIGSERIAL PRIMARY KEY,
    ticket_id   BIGINT NOT NULL REFERENCES coordination_tickets (id),
    actor_id    BIGINT REFERENCES users (id),
    action      TEXT NOT NULL,
    changes     JSONB NOT NULL DEFAULT '[]',
    comment     TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX coordination_ticket_history_idx ON coordination_ticket_history (ticket_id, id);
