-- User-reported is decided once, at creation (SPEC §4): a customer user reported the incident,
-- it came in through a human channel (phone, web, email, onsite), or a reporter was named.
-- Incidents stored before this column existed are decided by the same rule from what they
-- hold: a reporter is set, or the channel is a human one. Closed incidents are final, so the
-- trigger that guards them is lifted for this one backfill only.
ALTER TABLE incidents ADD COLUMN user_reported BOOLEAN NOT NULL DEFAULT FALSE;
-- When the reporter asked to withdraw the incident (SPEC §4.2 withdraw).
ALTER TABLE incidents ADD COLUMN withdrawal_requested_at TIMESTAMPTZ;

ALTER TABLE incidents DISABLE TRIGGER incidents_closed_are_final;
UPDATE incidents SET user_reported = TRUE
    WHERE reporter IS NOT NULL OR channel IN ('phone', 'web', 'email', 'onsite');
ALTER TABLE incidents ENABLE TRIGGER incidents_closed_are_final;

-- History entries customers must not read (SPEC §4.3): escalations other than level changes,
-- coordination results and event acknowledgements were stored as public before the rule
-- existed. The journal is append-only, so its guard is lifted for this one correction only.
ALTER TABLE incident_history DISABLE TRIGGER incident_history_append_only;
UPDATE incident_history SET internal = TRUE
    WHERE NOT internal
      AND (action IN ('coordination_resolved', 'event_acknowledged', 'event_resolved', 'assign')
           OR (action = 'escalate' AND NOT changes @> '[{"field": "level"}]'::jsonb)
           OR (action = 'edit' AND EXISTS (
                   SELECT 1 FROM jsonb_array_elements(changes) AS c
                   WHERE c ->> 'field' <> 'reporter')));
ALTER TABLE incident_history ENABLE TRIGGER incident_history_append_only;

-- The desk's queue of unassigned incidents (assignee_id=none).
CREATE INDEX incidents_unassigned_idx ON incidents (created_at DESC, id DESC)
    WHERE assignee_id IS NULL;

-- Follow-ups count incidents (SPEC §9): an unreached call is an attempt; an incident is followed
-- up at its first reached follow-up or its FOLLOW_UP_MAX_ATTEMPTS-th unreached one. The
-- follow-up that completed it is marked; for follow-ups already stored, the default of three
-- attempts decides.
ALTER TABLE follow_ups ADD COLUMN completes BOOLEAN NOT NULL DEFAULT FALSE;
WITH ordered AS (
    SELECT id, incident_id, reached,
           count(*) FILTER (WHERE NOT reached)
               OVER (PARTITION BY incident_id ORDER BY id) AS unreached
    FROM follow_ups
), completing AS (
    SELECT DISTINCT ON (incident_id) id
    FROM ordered
    WHERE reached OR unreached >= 3
    ORDER BY incident_id, id
)
UPDATE follow_ups SET completes = TRUE WHERE id IN (SELECT id FROM completing);
CREATE INDEX follow_ups_completes_idx ON follow_ups (incident_id) WHERE completes;

-- Mean satisfaction per period (SPEC §9) from the monthly summaries. Forgetting the summaries'
-- time zone makes the next start rebuild them from the incidents and follow-ups, counted by
-- the new rule.
ALTER TABLE kpi_monthly ADD COLUMN satisfaction_sum BIGINT NOT NULL DEFAULT 0;
-- The measures by engineer (SPEC §9 `assignee_id`): each incident counts under the assignee it
-- was closed with.
ALTER TABLE kpi_monthly ADD COLUMN assignee_id BIGINT;
ALTER TABLE kpi_monthly DROP CONSTRAINT kpi_monthly_key;
ALTER TABLE kpi_monthly ADD CONSTRAINT kpi_monthly_key
    UNIQUE NULLS NOT DISTINCT (month, customer_id, level, tier, assignee_id);
ALTER TABLE kpi_monthly ADD COLUMN satisfaction_count BIGINT NOT NULL DEFAULT 0;
-- Time to first response per level (SPEC §9: created → first of accepted, escalated by a person
-- or resolved) beside the time to resolve: the report's table of durations holds both measures.
ALTER TABLE resolve_times ADD COLUMN measure TEXT NOT NULL DEFAULT 'resolve'
    CHECK (measure IN ('resolve', 'first_response'));
DROP INDEX resolve_times_idx;
CREATE INDEX resolve_times_idx ON resolve_times (measure, month, level, minutes);
DELETE FROM report_summaries;

-- Each claim of an Idempotency-Key carries a token: the request that claimed it keeps its answer
-- only while the token is still its own, in the transaction of its effect, so a retry may take
-- over a claim whose server died before committing without ever running the request twice.
ALTER TABLE idempotency_keys ADD COLUMN claim_token BIGINT NOT NULL DEFAULT 0;
