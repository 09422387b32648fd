DROP TABLE configuration_item_history;
DROP FUNCTION refuse_history_rewrite();
DROP TABLE configuration_items;
DROP TABLE users;
DROP TABLE customers;
