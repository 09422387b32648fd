-- Upper-case abbreviations that are English stop words in lower case (HIS, IT, WHO) are now
-- kept in search documents (`domain::search::kept_abbreviations`). Documents written before
-- lack them: this marker asks the server to write again, at start-up and in the background,
-- the incidents' and knowledge entries' documents whose text holds one. Until then those are
-- found as before.
CREATE TABLE search_rewrite_pending (
    id  SMALLINT PRIMARY KEY CHECK (id = 1)
);
INSERT INTO search_rewrite_pending
SELECT 1 WHERE EXISTS (SELECT 1 FROM incidents) OR EXISTS (SELECT 1 FROM knowledge_entries);
