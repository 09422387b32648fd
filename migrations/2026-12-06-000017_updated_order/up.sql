-- Polling clients walk incidents, coordination tickets and knowledge entries in the order they
-- changed (`updated_since`, `sort=updated_at`, SPEC §12): keyset pages over (updated_at, id).
CREATE INDEX incidents_updated_idx ON incidents (updated_at, id);
CREATE INDEX coordination_tickets_updated_idx ON coordination_tickets (updated_at, id);
CREATE INDEX knowledge_entries_updated_idx ON knowledge_entries (updated_at, id);
