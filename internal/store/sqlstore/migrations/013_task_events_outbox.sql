-- Task events go through the outbox too: a task's status change and its
-- event row commit in one transaction, so the published_status column, its
-- index and the sweeper that repaired lost events are gone. An outbox row now
-- carries the event's attributes (JSON object of strings, matched by filter
-- policies) and, when the event has a natural one, its idempotency key
-- (task:<id>:<status>); rows without one use outbox:<row id>.
ALTER TABLE outbox ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE outbox ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
DROP INDEX tasks_publish;
ALTER TABLE tasks DROP COLUMN published_status;
