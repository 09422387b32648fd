DROP TABLE incident_notes;
DROP TABLE incident_history;
DROP TABLE incidents;
DROP FUNCTION refuse_closed_incident_change();
