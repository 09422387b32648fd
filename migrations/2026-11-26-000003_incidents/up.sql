-- Incidents (SPEC §4), their append-only history and notes (§4.3).

CREATE TABLE incidents (
    id                   BIGSERIAL PRIMARY KEY,
    number               TEXT NOT NULL GENERATED ALWAYS AS (
        'INC-' || CASE WHEN id < 1000000 THEN lpad(id::TEXT, 6, '0') ELSE id::TEXT END
    ) STORED UNIQUE,
    kind                 TEXT NOT NULL CHECK (kind IN ('fault', 'service_request')),
    channel              TEXT NOT NULL CHECK (channel IN ('phone', 'web', 'email', 'monitoring', 'onsite', 'other')),
    title                TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description          TEXT NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    customer_id          BIGINT NOT NULL REFERENCES customers (id),
    reporter             JSONB,
    source_system        TEXT CHECK (char_length(source_system) <= 200),
    ci_id                BIGINT REFERENCES configuration_items (id),
    category             TEXT REFERENCES categories (code),
    subcategory          TEXT REFERENCES subcategories (code),
    level                TEXT NOT NULL CHECK (level IN ('low', 'medium', 'high')),
    -- Sort key for `sort=level`.
    level_rank           SMALLINT NOT NULL GENERATED ALWAYS AS (
        CASE level WHEN 'low' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END
    ) STORED,
    affects_onsite_work  BOOLEAN NOT NULL DEFAULT FALSE,
    affects_data_upload  BOOLEAN NOT NULL DEFAULT FALSE,
    status               TEXT NOT NULL CHECK (status IN ('new', 'in_progress', 'resolved', 'closed')),
    tier                 TEXT NOT NULL DEFAULT 'l1' CHECK (tier IN ('l1', 'l2')),
    assignee_id          BIGINT REFERENCES users (id),
    workaround           TEXT,
    workaround_applied   BOOLEAN NOT NULL DEFAULT FALSE,
    solution             TEXT,
    cause                TEXT REFERENCES causes (code),
    subcause             TEXT REFERENCES subcauses (code),
    due_at               TIMESTAMPTZ NOT NULL,
    accepted_at          TIMESTAMPTZ,
    resolved_at          TIMESTAMPTZ,
    user_confirmed_at    TIMESTAMPTZ,
    closed_at            TIMESTAMPTZ,
    closed_by            BIGINT REFERENCES users (id),
    closure_code         TEXT CHECK (closure_code IN ('resolved', 'unresolved', 'duplicate', 'withdrawn')),
    duplicate_of         BIGINT REFERENCES incidents (id),
    recurrence_of        BIGINT REFERENCES incidents (id),
    occurrences          INTEGER NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    last_occurrence_at   TIMESTAMPTZ,
    dedup_key            TEXT,
    change_ref           TEXT,
    created_by           BIGINT NOT NULL REFERENCES users (id),
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    version              INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    CONSTRAINT incidents_closed_fields CHECK (
        (status = 'closed') = (closed_at IS NOT NULL AND closed_by IS NOT NULL AND closure_code IS NOT NULL)
    ),
    CONSTRAINT incidents_resolution_fields CHECK (
        status NOT IN ('resolved') OR (resolved_at IS NOT NULL AND solution IS NOT NULL AND cause IS NOT NULL)
    ),
    CONSTRAINT incidents_duplicate_target CHECK ((closure_code = 'duplicate') = (duplicate_of IS NOT NULL)),
    CONSTRAINT incidents_not_own_duplicate CHECK (duplicate_of <> id),
    CONSTRAINT incidents_subcategory_needs_category CHECK (subcategory IS NULL OR category IS NOT NULL)
);

CREATE INDEX incidents_created_idx ON incidents (created_at DESC, id DESC);
CREATE INDEX incidents_due_idx ON incidents (due_at, id);
CREATE INDEX incidents_level_idx ON incidents (level_rank, id);
CREATE INDEX incidents_status_idx ON incidents (status);
CREATE INDEX incidents_customer_idx ON incidents (customer_id, created_at DESC);
CREATE INDEX incidents_assignee_idx ON incidents (assignee_id) WHERE assignee_id IS NOT NULL;
CREATE INDEX incidents_dedup_key_idx ON incidents (dedup_key) WHERE dedup_key IS NOT NULL;

-- A closed incident never changes again, by any path (procedure §4.1): the database refuses
-- it even to code that bypasses the state machine.
CREATE FUNCTION refuse_closed_incident_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'incident % is closed and can no longer change', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER incidents_closed_are_final
    BEFORE UPDATE OR DELETE ON incidents
    FOR EACH ROW WHEN (OLD.status = 'closed')
    EXECUTE FUNCTION refuse_closed_incident_change();

CREATE TABLE incident_history (
    id           BIGSERIAL PRIMARY KEY,
    incident_id  BIGINT NOT NULL REFERENCES incidents (id),
    actor_id     BIGINT REFERENCES users (id),
    action       TEXT NOT NULL,
    changes      JSONB NOT NULL DEFAULT '[]',
    comment      TEXT,
    -- Entries about internal notes are hidden from customer users.
    internal     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX incident_history_incident_idx ON incident_history (incident_id, id);
CREATE TRIGGER incident_history_append_only
    BEFORE UPDATE OR DELETE ON incident_history
    FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite();

CREATE TABLE incident_notes (
    id           BIGSERIAL PRIMARY KEY,
    incident_id  BIGINT NOT NULL REFERENCES incidents (id),
    author_id    BIGINT NOT NULL REFERENCES users (id),
    visibility   TEXT NOT NULL CHECK (visibility IN ('internal', 'public')),
    body         TEXT NOT NULL CHECK (char_length(body) BETWEEN 1 AND 10000),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX incident_notes_incident_idx ON incident_notes (incident_id, id);
CREATE TRIGGER incident_notes_append_only
    BEFORE UPDATE OR DELETE ON incident_notes
    FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite();
