-- System events (webhook.disabled, ...) waiting to be published. A row is
-- written in the same transaction as the state change that causes the event,
-- so the event cannot be lost between the change and its publish; the relay
-- (package outbox) publishes each row with an idempotency key derived from its
-- id and then deletes it. A relay leases rows (lease_owner, lease_until) so
-- that two nodes do not both publish one; data is the event's JSON payload.
CREATE TABLE outbox (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    type        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (lease_until, created_at);
