-- The delivery log (the console's): a project's or a subscription's
-- deliveries newest or oldest first, by keyset (created_at, id), of some
-- states or all. Each state is one ordered range of one of these indexes,
-- and a page merges the ranges of the states asked for (all four when none
-- is), so it reads about as many rows as it shows whatever the filter.
-- A search by subject finds the events of that subject.
CREATE INDEX deliveries_log_state ON deliveries (project_id, state, created_at, id);
CREATE INDEX deliveries_subscription_state ON deliveries (subscription_id, state, created_at, id);
CREATE INDEX events_subject ON events (project_id, subject) WHERE subject <> '';
