DROP TABLE sla_policies;
DROP TABLE subcauses;
DROP TABLE causes;
DROP TABLE subcategories;
DROP TABLE categories;
