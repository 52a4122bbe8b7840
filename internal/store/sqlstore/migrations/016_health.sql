-- Delivery health counters that health.Evaluate needs besides
-- consecutive_failures, persisted with the subscription so that a signal is
-- raised once across batches, nodes and restarts:
--   degraded       a run of failures crossed half the failure budget (or the
--                  subscription was disabled) and no attempt has succeeded
--                  since; the next success is a recovery.
--   run_failures   failed attempts since the last success; unlike
--                  consecutive_failures, not reset when the subscription is
--                  activated again.
--   failing_since  the first failed attempt of that run (unix ms, 0 = none or
--                  not known).
ALTER TABLE subscriptions ADD COLUMN degraded BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE subscriptions ADD COLUMN run_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN failing_since BIGINT NOT NULL DEFAULT 0;
UPDATE subscriptions SET run_failures = consecutive_failures;
