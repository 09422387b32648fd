DROP TABLE notifications;
DROP FUNCTION notification_recipient(TEXT, BIGINT);
ALTER TABLE customers DROP COLUMN locale;
DROP INDEX users_email_key;
ALTER TABLE users DROP COLUMN email;
