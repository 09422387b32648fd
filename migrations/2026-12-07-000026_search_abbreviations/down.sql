DROP TABLE search_rewrite_pending;
