-- Attachments (SPEC §13): files kept with incidents, coordination tickets and knowledge entries.

-- The bytes, stored once per distinct file. `sha256` is NULL while an upload is still arriving:
-- such a row belongs to no attachment yet, and the cleanup job removes it once it is older than
-- any upload can take.
CREATE TABLE attachment_contents (
    id BIGSERIAL PRIMARY KEY,
    sha256 BYTEA UNIQUE CHECK (sha256 IS NULL OR octet_length(sha256) = 32),
    size BIGINT NOT NULL DEFAULT 0 CHECK (size >= 0),
    chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX attachment_contents_staged ON attachment_contents (created_at) WHERE sha256 IS NULL;

-- The bytes in order, `chunk_size` bytes each but the last. Files are mostly compressed already
-- (images, archives, office documents), so PostgreSQL is not asked to compress them again, and
-- a range read fetches only the slices it needs.
CREATE TABLE attachment_chunks (
    content_id BIGINT NOT NULL REFERENCES attachment_contents (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL CHECK (seq >= 0),
    data BYTEA NOT NULL,
    PRIMARY KEY (content_id, seq)
);
ALTER TABLE attachment_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE attachments (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT REFERENCES incidents (id),
    ticket_id BIGINT REFERENCES coordination_tickets (id),
    entry_id BIGINT REFERENCES knowledge_entries (id),
    -- RESTRICT: bytes a record names are never removed under it.
    content_id BIGINT NOT NULL REFERENCES attachment_contents (id) ON DELETE RESTRICT,
    filename TEXT NOT NULL CHECK (filename <> ''),
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL CHECK (size >= 0),
    sha256 BYTEA NOT NULL,
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'internal')),
    uploaded_by BIGINT NOT NULL REFERENCES users (id),
    uploaded_at TIMESTAMPTZ NOT NULL,
    CHECK (num_nonnulls(incident_id, ticket_id, entry_id) = 1)
);
CREATE INDEX attachments_incident ON attachments (incident_id, id) WHERE incident_id IS NOT NULL;
CREATE INDEX attachments_ticket ON attachments (ticket_id, id) WHERE ticket_id IS NOT NULL;
CREATE INDEX attachments_entry ON attachments (entry_id, id) WHERE entry_id IS NOT NULL;
CREATE INDEX attachments_content ON attachments (content_id);

-- A note names attachments of its incident.
ALTER TABLE incident_notes ADD COLUMN attachment_ids BIGINT[] NOT NULL DEFAULT '{}';

-- Links a monitoring event carried (PagerDuty `links` and `images`), as `[{href, text}]`.
ALTER TABLE incidents ADD COLUMN links JSONB NOT NULL DEFAULT '[]';
