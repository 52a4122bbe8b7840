-- Attempts are partitioned by range of delivery_id, so retention drops whole
-- partitions instead of deleting rows. Delivery ids are UUIDv7, whose text
-- begins with the delivery's creation time in milliseconds (12 hex digits), so
-- a range of ids is a range of time, and a delivery's attempts (made later,
-- with later attempt ids) live in the partition of their delivery: listing
-- them reads one partition. The partitions are one UTC day each, created
-- ahead and dropped when expired by the leader's partitioner
-- (internal/maintenance/partitioner.go).
--
-- The existing table becomes the partition of every id before the next UTC
-- midnight (attaching it reads its rows once; only rows whose delivery id is
-- not a UUIDv7 of the past, if any, are moved to the default partition). A default
-- partition takes whatever no day covers (ids that are not UUIDv7, days the
-- partitioner did not create, attempts kept when their partition is dropped);
-- the pruner deletes from it row by row.
--
-- The primary key must include the partition key: (delivery_id, id). Nothing
-- looks an attempt up by id alone.
ALTER TABLE attempts RENAME TO attempts_legacy;
ALTER TABLE attempts_legacy RENAME CONSTRAINT attempts_pkey TO attempts_legacy_pkey;
ALTER INDEX attempts_delivery RENAME TO attempts_legacy_delivery;
ALTER TABLE attempts_legacy ADD CONSTRAINT attempts_legacy_key UNIQUE (delivery_id, id);
CREATE TABLE attempts (LIKE attempts_legacy INCLUDING DEFAULTS) PARTITION BY RANGE (delivery_id);
ALTER TABLE attempts ADD PRIMARY KEY (delivery_id, id);
CREATE INDEX attempts_delivery ON attempts (delivery_id, number);
CREATE TABLE attempts_default PARTITION OF attempts DEFAULT;
DO $$ DECLARE h text := lpad(to_hex((extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') * 1000)::bigint), 12, '0'); b text := substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-0000-0000-000000000000'; BEGIN EXECUTE format('INSERT INTO attempts_default SELECT * FROM attempts_legacy WHERE delivery_id >= %L', b); EXECUTE format('DELETE FROM attempts_legacy WHERE delivery_id >= %L', b); EXECUTE format('ALTER TABLE attempts ATTACH PARTITION attempts_legacy FOR VALUES FROM (MINVALUE) TO (%L)', b); END $$;
