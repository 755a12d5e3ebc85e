-- Event-id dedupe keeps a window, not every id forever: a duplicate is a retried publish,
-- which arrives within seconds or minutes of the first; rows older than the window are pruned.
ALTER TABLE applied_events ADD COLUMN applied_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX applied_events_applied_at ON applied_events USING brin (applied_at);
