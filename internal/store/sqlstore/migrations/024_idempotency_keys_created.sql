-- Expired idempotency keys are pruned in bounded batches, oldest first: this
-- index lets a batch find them without reading the whole table.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
