-- Idempotency-Key (SPEC §10): the first response to a creating POST, replayed for 24 h to the
-- same caller, method and path. A row without `status` is a request still in flight.
CREATE TABLE idempotency_keys (
    user_id       BIGINT NOT NULL REFERENCES users (id),
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    key           TEXT NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the request body: the same key with another body is refused.
    request_hash  BYTEA NOT NULL,
    status        SMALLINT,
    content_type  TEXT,
    etag          TEXT,
    location      TEXT,
    body          BYTEA,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, method, path, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
