CREATE OR REPLACE FUNCTION refuse_closed_incident_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'incident % is closed and can no longer change', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE OR REPLACE FUNCTION refuse_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history rows are append-only' USING ERRCODE = 'restrict_violation';
END;
$$;
