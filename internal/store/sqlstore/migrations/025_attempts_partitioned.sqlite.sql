-- PostgreSQL partitions attempts by delivery id (025_attempts_partitioned.postgres.sql).
-- SQLite keeps one table: its pruner deletes attempts with their deliveries, in
-- bounded batches.
SELECT 1;
