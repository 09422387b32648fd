-- API tokens for integrations (SPEC §10). Each token acts as a user of its own, created with
-- it, so the journal names the integration that wrote an entry. The token's id is its user's id.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person'
    CHECK (kind IN ('person', 'api_token'));
-- Token users are named `@api-token-<id>`, which no person can choose; people keep the old rule.
ALTER TABLE users DROP CONSTRAINT users_username_check;
ALTER TABLE users ADD CONSTRAINT users_username_check CHECK (
    (kind = 'person' AND username ~ '^[a-z0-9][a-z0-9_.@-]{1,63}$')
    OR (kind = 'api_token' AND username ~ '^@api-token-[0-9]+$')
);

CREATE TABLE api_tokens (
    id            BIGINT PRIMARY KEY REFERENCES users (id),
    name          TEXT NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 100),
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash    BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_by    BIGINT REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);

-- Monitoring may open incidents for no known customer (SPEC §4, §8); every other channel names one.
ALTER TABLE incidents ALTER COLUMN customer_id DROP NOT NULL;
ALTER TABLE incidents ADD CONSTRAINT incidents_customer_required
    CHECK (customer_id IS NOT NULL OR channel = 'monitoring');

-- One open incident per deduplication key, whatever the number of concurrent senders or server
-- instances (SPEC §8). Once resolved or closed, the key is free to open a new incident.
DROP INDEX incidents_dedup_key_idx;
CREATE UNIQUE INDEX incidents_open_dedup_key_idx ON incidents (dedup_key)
    WHERE dedup_key IS NOT NULL AND status IN ('new', 'in_progress');
CREATE INDEX incidents_dedup_key_idx ON incidents (dedup_key) WHERE dedup_key IS NOT NULL;
