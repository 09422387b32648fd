DROP INDEX knowledge_subcategory_idx;
ALTER TABLE incident_search DROP COLUMN category, DROP COLUMN subcategory;
DROP TABLE incident_search_state;
