-- Deliveries of an inactive subscription are held: they keep their state but
-- leave the due index, so a large paused backlog costs claims nothing.
ALTER TABLE deliveries ADD COLUMN held BOOLEAN NOT NULL DEFAULT FALSE;
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state IN ('pending', 'retrying') AND NOT held;
