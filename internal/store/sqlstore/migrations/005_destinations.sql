-- Subscriptions of every destination kind: kind-specific settings as JSON,
-- and an SNS-style filter policy evaluated against attributes or the body.
ALTER TABLE subscriptions ADD COLUMN destination TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN filter_policy TEXT NOT NULL DEFAULT '';
ALTER TABLE subscriptions ADD COLUMN filter_scope TEXT NOT NULL DEFAULT 'attributes';
