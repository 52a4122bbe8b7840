-- FIFO pull queues (SQS FIFO semantics). A FIFO queue's messages carry a
-- message group id: a group's messages are received in send order, and none
-- while an earlier one of the group is in flight. dedup_key is a FIFO
-- message's deduplication id (given, or the SHA-256 of the body with
-- content-based deduplication); queue_dedup remembers each for the 5-minute
-- deduplication window, even after the message is deleted. (dedup_id stays
-- the standard queues' delivery-id dedup, unique while the message exists.)
ALTER TABLE queues ADD COLUMN fifo BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE queues ADD COLUMN content_dedup BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE queue_messages ADD COLUMN group_id TEXT NOT NULL DEFAULT '';
ALTER TABLE queue_messages ADD COLUMN dedup_key TEXT NOT NULL DEFAULT '';
CREATE INDEX queue_messages_group ON queue_messages (queue_id, group_id, seq) WHERE group_id <> '';

CREATE TABLE queue_dedup (
    queue_id   TEXT NOT NULL,
    dedup_key  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (queue_id, dedup_key)
);
CREATE INDEX queue_dedup_sent ON queue_dedup (sent_at);
