-- The delivery log (the console's): a project's or a subscription's
-- deliveries newest or oldest first, by keyset (created_at, id). Every page
-- is one ordered range of an index, or one range per state merged, so it
-- reads about as many rows as it shows: without a state filter the
-- project's range (deliveries_log) or the subscription's
-- (deliveries_subscription, from 001); with one, a range of
-- deliveries_log_state or deliveries_subscription_state per state. A search
-- by subject finds the events of that subject.
CREATE INDEX deliveries_log ON deliveries (project_id, created_at, id);
CREATE INDEX deliveries_log_state ON deliveries (project_id, state, created_at, id);
CREATE INDEX deliveries_subscription_state ON deliveries (subscription_id, state, created_at, id);
CREATE INDEX events_subject ON events (project_id, subject) WHERE subject <> '';
