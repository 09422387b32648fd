ALTER TABLE incidents DROP COLUMN links;
ALTER TABLE incident_notes DROP COLUMN attachment_ids;
DROP TABLE attachments;
DROP TABLE attachment_chunks;
DROP TABLE attachment_contents;
