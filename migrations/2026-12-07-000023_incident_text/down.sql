DROP TABLE incident_text;
