-- Reporters are told by email (SPEC §12). Customer users may have an address, organisations a
-- language for their messages.
ALTER TABLE users ADD COLUMN email TEXT
    CHECK (email IS NULL OR (length(email) BETWEEN 3 AND 254 AND email ~ '^[^@\s]+@[^@\s]+$'));
-- Addresses are compared without case: `Li@Example.com` and `li@example.com` are one mailbox.
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

ALTER TABLE customers ADD COLUMN locale TEXT NOT NULL DEFAULT 'zh' CHECK (locale IN ('zh', 'en'));

-- Where a message about an incident goes: the reporter's own address, else the address of the
-- customer user who created the incident; NULL when there is none (nothing is sent). One
-- definition for the writes that queue messages and for the reminder job.
CREATE FUNCTION notification_recipient(reporter_email TEXT, created_by BIGINT) RETURNS TEXT
    LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        NULLIF(btrim(reporter_email), ''),
        (SELECT u.email FROM users u WHERE u.id = created_by AND 'customer' = ANY (u.roles))
    )
$$;

-- The transactional outbox of email: a row is written in the same transaction as the change it
-- reports and sent by a worker of any instance. What the message says is read from the incident
-- (and the note) when it is sent; `resolution` pins the resolution a `resolved` message or a
-- reminder is about, so a message whose resolution was rejected before it went out is skipped.
CREATE TABLE notifications (
    id              BIGSERIAL PRIMARY KEY,
    incident_id     BIGINT NOT NULL REFERENCES incidents (id),
    kind            TEXT NOT NULL
        CHECK (kind IN ('created', 'resolved', 'confirmation_reminder', 'closed', 'note')),
    recipient       TEXT NOT NULL,
    locale          TEXT NOT NULL CHECK (locale IN ('zh', 'en')),
    note_id         BIGINT REFERENCES incident_notes (id),
    resolution      TIMESTAMPTZ,
    -- 1, 2, 3 for the reminders of one resolution; unique, so two instances never add the same.
    reminder        SMALLINT,
    status          TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- A worker that claimed the message owns it until then; a crashed worker's claim expires.
    locked_until    TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX notifications_incident_idx ON notifications (incident_id, id);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE UNIQUE INDEX notifications_reminder_key ON notifications (incident_id, resolution, reminder)
    WHERE kind = 'confirmation_reminder';
