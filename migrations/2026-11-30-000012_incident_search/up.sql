-- Suggestions (SPEC §7): incidents closed as resolved, searchable by their title and description
-- segmented like knowledge entries. Written in the closing transaction; the server fills in the
-- incidents closed before this table existed at start-up.
CREATE TABLE incident_search (
    incident_id    BIGINT PRIMARY KEY REFERENCES incidents (id),
    search_vector  TSVECTOR NOT NULL
);
CREATE INDEX incident_search_idx ON incident_search USING GIN (search_vector);
