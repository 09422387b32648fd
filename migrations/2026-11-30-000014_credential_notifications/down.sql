DROP TRIGGER api_tokens_credentials_changed ON api_tokens;
DROP TRIGGER users_credentials_changed ON users;
DROP FUNCTION notify_credentials_changed();
