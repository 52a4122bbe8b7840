-- A queue's message sequence numbers come from a counter on the queue row:
-- last_seq is the last number handed out. A sender raises it with one UPDATE,
-- which also locks the row until the send commits, so concurrent senders (on
-- PostgreSQL, from several processes) get distinct numbers and commit in the
-- order of their numbers; MAX(seq) read without a lock let two senders share
-- a number, and a FIFO receive then took both messages of one group.
ALTER TABLE queues ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
UPDATE queues SET last_seq = COALESCE((SELECT MAX(m.seq) FROM queue_messages m WHERE m.queue_id = queues.id), 0);
