ALTER TABLE incidents DROP COLUMN knowledge_entry_id;
DROP TABLE knowledge_entries;
