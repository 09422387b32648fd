DROP TABLE recent_writes;
