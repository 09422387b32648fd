-- The knowledge base (SPEC §7). search_vector is written with each change from the text the
-- server segments (Chinese words, characters and bigrams; Latin text through `english`), so a
-- change is searchable as soon as it commits.
CREATE TABLE knowledge_entries (
    id                  BIGSERIAL PRIMARY KEY,
    title               TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    symptom             TEXT NOT NULL CHECK (char_length(symptom) <= 10000),
    cause               TEXT CHECK (char_length(cause) <= 10000),
    solution            TEXT NOT NULL CHECK (char_length(solution) <= 10000),
    category            TEXT REFERENCES categories (code),
    subcategory         TEXT REFERENCES subcategories (code),
    tags                TEXT[] NOT NULL DEFAULT '{}',
    source_incident_id  BIGINT REFERENCES incidents (id),
    status              TEXT NOT NULL CHECK (status IN ('draft', 'submitted', 'published', 'retired')),
    author_id           BIGINT NOT NULL REFERENCES users (id),
    reviewed_by         BIGINT REFERENCES users (id),
    reject_reason       TEXT,
    times_used          INTEGER NOT NULL DEFAULT 0,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    published_at        TIMESTAMPTZ,
    version             INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    search_vector       TSVECTOR NOT NULL DEFAULT ''::tsvector,
    CONSTRAINT knowledge_four_eyes CHECK (status <> 'published' OR reviewed_by <> author_id)
);
CREATE INDEX knowledge_search_idx ON knowledge_entries USING GIN (search_vector);
CREATE INDEX knowledge_status_idx ON knowledge_entries (status, id);
CREATE INDEX knowledge_tags_idx ON knowledge_entries USING GIN (tags);

-- The entry that solved an incident (`resolve` with `knowledge_entry_id`); entries count their
-- uses in times_used.
ALTER TABLE incidents ADD COLUMN knowledge_entry_id BIGINT REFERENCES knowledge_entries (id);
