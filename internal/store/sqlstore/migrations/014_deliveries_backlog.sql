-- The delivery backlog (pending and retrying, held or not) by state, for the
-- queue-depth metric: an index-only count over unfinished deliveries, so a
-- scrape never reads the delivered and failed history kept for retention.
CREATE INDEX deliveries_backlog ON deliveries (state) WHERE state IN ('pending', 'retrying');
