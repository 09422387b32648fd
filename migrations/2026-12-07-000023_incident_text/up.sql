-- Incident search (SPEC §14): one document per incident, its number, title, description,
-- solution, workaround and notes segmented like knowledge entries and weighted (number and title
-- A, description B, solution, workaround and public notes C, internal notes D). Written in the
-- transaction of each write that changes that text; incidents from before this table are indexed
-- by the server in the background at start-up.
CREATE TABLE incident_text (
    incident_id    BIGINT PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    search_vector  TSVECTOR NOT NULL
);
CREATE INDEX incident_text_idx ON incident_text USING GIN (search_vector) WITH (fastupdate = off);

-- Holds a row while incidents written before this table await their documents: only a database
-- that already had incidents gets one, and the server removes it once none is left, so later
-- start-ups look for nothing.
CREATE TABLE incident_text_backfill (
    id  SMALLINT PRIMARY KEY CHECK (id = 1)
);
INSERT INTO incident_text_backfill SELECT 1 WHERE EXISTS (SELECT 1 FROM incidents);
