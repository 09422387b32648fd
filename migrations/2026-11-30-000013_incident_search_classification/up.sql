-- Set once every incident closed as resolved before incident_search existed has been indexed
-- (the start-up backfill): later incidents are indexed in their closing transaction, so later
-- starts need not look for unindexed ones among all incidents.
CREATE TABLE incident_search_state (
    id             SMALLINT PRIMARY KEY CHECK (id = 1),
    backfilled_at  TIMESTAMPTZ NOT NULL
);

-- Suggestions rank candidates by their text and by the classification they share with the open
-- incident; keeping the classification beside the search vector ranks them without reading
-- each candidate's incident row.
ALTER TABLE incident_search ADD COLUMN category TEXT, ADD COLUMN subcategory TEXT;
UPDATE incident_search s SET category = i.category, subcategory = i.subcategory
FROM incidents i WHERE i.id = s.incident_id;

-- Suggestions look first through the newest documents of the incident's own subcategory.
CREATE INDEX incident_search_subcategory_idx ON incident_search (subcategory, incident_id);
CREATE INDEX knowledge_subcategory_idx ON knowledge_entries (subcategory, id);
