-- The delivery log (the console's, and GET /v1/…/deliveries without a
-- subscription): a project's deliveries newest or oldest first, by keyset
-- (created_at, id), optionally of some states. Each filter is served by an
-- index that also gives the order, so a page reads about as many rows as it
-- shows: by project, by project and state (one range per state, merged), and
-- by subscription (deliveries_subscription, extended here with the id).
-- A search by subject finds the events of that subject.
CREATE INDEX deliveries_log ON deliveries (project_id, created_at, id);
CREATE INDEX deliveries_log_state ON deliveries (project_id, state, created_at, id);
DROP INDEX deliveries_subscription;
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, created_at, id);
CREATE INDEX events_subject ON events (project_id, subject) WHERE subject <> '';
