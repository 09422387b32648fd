DROP TABLE incident_search;
