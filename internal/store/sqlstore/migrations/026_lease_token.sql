-- A token per claim: every claim of a delivery increments it, and an outcome
-- or a renewal applies only with the token of the claim it came from. The
-- owner alone is not enough: a node paused past its lease, whose delivery
-- another node claimed and finished (a retry), can claim it again itself,
-- and its first claim's late outcome would then be recorded as if current.
-- (024 and 025 are left to a concurrent change.)
ALTER TABLE deliveries ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
