-- Pull queues with SQS semantics: messages are leased by a receive (a new
-- receipt handle and visible_at = now + visibility timeout), acknowledged by
-- deleting them, and moved to a dead-letter queue after max_receive_count
-- receives. Durations are milliseconds; times Unix milliseconds, 0 = not set.

CREATE TABLE queues (
    id                    TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL,
    name                  TEXT NOT NULL,
    visibility_timeout_ms BIGINT NOT NULL,
    max_receive_count     INTEGER NOT NULL,
    dead_letter_queue_id  TEXT NOT NULL,
    retention_ms          BIGINT NOT NULL,
    delay_ms              BIGINT NOT NULL,
    created_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX queues_name ON queues (project_id, name);
CREATE INDEX queues_dead_letter ON queues (dead_letter_queue_id) WHERE dead_letter_queue_id <> '';

-- seq orders a queue's messages (oldest first); source_queue_id is the queue a
-- dead-lettered message came from; dedup_id (a delivery id) keeps a retried
-- delivery from enqueueing twice.
CREATE TABLE queue_messages (
    id                TEXT PRIMARY KEY,
    queue_id          TEXT NOT NULL,
    project_id        TEXT NOT NULL,
    seq               BIGINT NOT NULL,
    body              TEXT NOT NULL,
    attributes        TEXT NOT NULL,
    sent_at           BIGINT NOT NULL,
    visible_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    receive_count     INTEGER NOT NULL,
    receipt_handle    TEXT NOT NULL,
    first_received_at BIGINT NOT NULL,
    source_queue_id   TEXT NOT NULL,
    dedup_id          TEXT NOT NULL
);
CREATE INDEX queue_messages_order ON queue_messages (queue_id, seq);
CREATE INDEX queue_messages_visible ON queue_messages (queue_id, visible_at);
CREATE INDEX queue_messages_expires ON queue_messages (expires_at);
CREATE UNIQUE INDEX queue_messages_handle ON queue_messages (receipt_handle) WHERE receipt_handle <> '';
CREATE UNIQUE INDEX queue_messages_dedup ON queue_messages (queue_id, dedup_id) WHERE dedup_id <> '';
