-- Organisations served by the service desk (单位).
CREATE TABLE customers (
    id          BIGSERIAL PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1)
);

CREATE TABLE users (
    id                 BIGSERIAL PRIMARY KEY,
    -- Stored lower-case, so uniqueness is case-insensitive.
    username           TEXT NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.@-]{1,63}$'),
    password_hash      TEXT NOT NULL,
    display_name       TEXT NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 200),
    roles              TEXT[] NOT NULL CHECK (
        cardinality(roles) >= 1
        AND roles <@ ARRAY['admin', 'service_desk', 'l2_engineer', 'ops_staff',
                           'incident_manager', 'customer', 'integration']::TEXT[]
    ),
    customer_id        BIGINT REFERENCES customers (id),
    active             BOOLEAN NOT NULL DEFAULT TRUE,
    -- Tokens carry the generation they were issued under; raising it (on deactivation and
    -- password change) revokes every token issued before.
    token_generation   INTEGER NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    version            INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- A customer user belongs to exactly one organisation; staff belong to none.
    CONSTRAINT users_customer_binding CHECK ((('customer' = ANY (roles)) = (customer_id IS NOT NULL)))
);
CREATE INDEX users_customer_id_idx ON users (customer_id);

CREATE TABLE configuration_items (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    ci_type      TEXT NOT NULL CHECK (char_length(ci_type) BETWEEN 1 AND 64),
    customer_id  BIGINT NOT NULL REFERENCES customers (id),
    system       TEXT NOT NULL CHECK (char_length(system) BETWEEN 1 AND 200),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    version      INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- Monitoring events name a CI by its name within a customer (SPEC §8).
    CONSTRAINT configuration_items_customer_name_key UNIQUE (customer_id, name)
);

-- Append-only: configuration management feeds incident handling (procedure §4.2 item 4),
-- so every change to a CI is kept.
CREATE TABLE configuration_item_history (
    id                     BIGSERIAL PRIMARY KEY,
    configuration_item_id  BIGINT NOT NULL REFERENCES configuration_items (id),
    actor_id               BIGINT REFERENCES users (id),
    action                 TEXT NOT NULL CHECK (action IN ('created', 'updated')),
    changes                JSONB NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX configuration_item_history_item_idx ON configuration_item_history (configuration_item_id, id);

CREATE FUNCTION refuse_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history rows are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER configuration_item_history_append_only
    BEFORE UPDATE OR DELETE ON configuration_item_history
    FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite();
