-- FIFO ordering. A subscription with ordering 'fifo' gives each of its
-- deliveries an ordering key (the event's ordering_key, else its subject, else
-- '_'); only the head of a (subscription, ordering key) — the earliest waiting
-- delivery in publish order (created_at, then id) — may be claimed.
-- Deliveries of other subscriptions keep the key '' and skip the head check.
ALTER TABLE subscriptions ADD COLUMN ordering TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT NOT NULL DEFAULT '';
CREATE INDEX deliveries_fifo_head ON deliveries (subscription_id, ordering_key, created_at, id)
    WHERE state IN ('pending', 'retrying') AND ordering_key <> '';
