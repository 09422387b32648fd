DROP TABLE incident_text_backfill;
DROP TABLE incident_text;
