-- Summaries the measures and the statistics report read (SPEC §9), so that a 24-month KPI query
-- or a month's report reads a few thousand rows, not every incident of the period. Each closing
-- transaction (and each follow-up) adds to them in the same transaction, so they stay exact.
-- Months are local months in the time zone recorded in report_summaries; the server rebuilds
-- all of them from the incidents when that row is missing (as after this migration) or names
-- another TIMEZONE.

CREATE TABLE report_summaries (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    timezone  TEXT NOT NULL,
    built_at  TIMESTAMPTZ NOT NULL
);

-- The measures by month, customer, level and tier (the KPI filters).
CREATE TABLE kpi_monthly (
    month               DATE NOT NULL,
    customer_id         BIGINT,
    level               TEXT NOT NULL,
    tier                TEXT NOT NULL,
    closed              BIGINT NOT NULL DEFAULT 0,
    resolved            BIGINT NOT NULL DEFAULT 0,
    resolved_on_time    BIGINT NOT NULL DEFAULT 0,
    follow_ups          BIGINT NOT NULL DEFAULT 0,
    follow_ups_on_time  BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT kpi_monthly_key UNIQUE NULLS NOT DISTINCT (month, customer_id, level, tier)
);

-- The statistics report's tables by month: one row per dimension and code ('' for none).
CREATE TABLE statistics_monthly (
    month      DATE NOT NULL,
    dimension  TEXT NOT NULL,
    code       TEXT NOT NULL,
    subcode    TEXT NOT NULL,
    count      BIGINT NOT NULL DEFAULT 0,
    breached   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (month, dimension, code, subcode)
);

-- Minutes from recording to resolution of each closed incident with a resolution, for the
-- report's median and 90th percentile (a distribution cannot be summed up exactly).
CREATE TABLE resolve_times (
    month    DATE NOT NULL,
    level    TEXT NOT NULL,
    minutes  DOUBLE PRECISION NOT NULL
);
CREATE INDEX resolve_times_idx ON resolve_times (month, level, minutes);
