-- Failed sign-ins per username and per client address, shared by every instance, so that
-- throttling holds however many servers answer, and an administrator (or the command line)
-- can lift a lock. Only the failures inside the throttling window are kept, newest last.
CREATE TABLE sign_in_failures (
    key text PRIMARY KEY,
    failures timestamptz[] NOT NULL,
    last_failed_at timestamptz NOT NULL
);
CREATE INDEX sign_in_failures_last_failed_idx ON sign_in_failures (last_failed_at);
