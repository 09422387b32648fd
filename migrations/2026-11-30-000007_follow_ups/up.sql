-- Follow-ups (回访, SPEC §9): a user-reported incident closed as resolved or unresolved is due a
-- call-back by follow_up_due_at; the call-backs are records beside the incident, which never
-- changes after closure.
ALTER TABLE incidents ADD COLUMN follow_up_due_at TIMESTAMPTZ;
CREATE INDEX incidents_follow_up_due_idx ON incidents (follow_up_due_at, id)
    WHERE follow_up_due_at IS NOT NULL;

CREATE TABLE follow_ups (
    id            BIGSERIAL PRIMARY KEY,
    incident_id   BIGINT NOT NULL REFERENCES incidents (id),
    channel       TEXT NOT NULL CHECK (channel IN ('phone', 'web', 'email', 'onsite', 'other')),
    reached       BOOLEAN NOT NULL,
    satisfaction  SMALLINT CHECK (satisfaction BETWEEN 1 AND 5),
    comment       TEXT NOT NULL DEFAULT '' CHECK (char_length(comment) <= 10000),
    performed_by  BIGINT NOT NULL REFERENCES users (id),
    performed_at  TIMESTAMPTZ NOT NULL,
    on_time       BOOLEAN NOT NULL
);
CREATE INDEX follow_ups_incident_idx ON follow_ups (incident_id, id);
CREATE INDEX follow_ups_performed_idx ON follow_ups (performed_at);

-- The measures of SPEC §9 count incidents by the period they were closed in.
CREATE INDEX incidents_closed_idx ON incidents (closed_at) WHERE closed_at IS NOT NULL;
