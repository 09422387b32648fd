-- The database's guards name themselves, so the service tells their refusals apart by name
-- (a stable identifier) rather than by reading the message text.
CREATE OR REPLACE FUNCTION refuse_closed_incident_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'incident % is closed and can no longer change', OLD.id
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'incidents_closed_are_final';
END;
$$;

CREATE OR REPLACE FUNCTION refuse_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history rows are append-only'
        USING ERRCODE = 'restrict_violation', CONSTRAINT = TG_TABLE_NAME || '_append_only';
END;
$$;
