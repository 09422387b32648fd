-- Every change to a user or an API token tells the server instances, which keep callers in a
-- per-instance cache, to forget them. NOTIFY is delivered when the change commits and not at
-- all when it rolls back; notifications of one transaction are delivered once.
CREATE FUNCTION notify_credentials_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('credentials_changed', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER users_credentials_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_credentials_changed();

-- `last_used_at` is written as tokens are used and changes nothing about who may call.
CREATE TRIGGER api_tokens_credentials_changed
    AFTER UPDATE OF token_hash, expires_at, revoked_at OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION notify_credentials_changed();
