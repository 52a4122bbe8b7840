-- Core schema: projects, keys, subscriptions, events, deliveries, attempts.
-- Plain SQL that both SQLite and PostgreSQL accept. Times are Unix milliseconds;
-- 0 stands for "not set". JSON values are stored as text.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('subscriptions_version', 1);

CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    admin      BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE subscriptions (
    id                    TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL REFERENCES projects (id),
    name                  TEXT NOT NULL,
    description           TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    url                   TEXT NOT NULL,
    event_types           TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    subject_ids           TEXT NOT NULL,
    headers               TEXT NOT NULL,
    tags                  TEXT NOT NULL,
    metadata              TEXT NOT NULL,
    timeout_seconds       INTEGER NOT NULL,
    max_retries           INTEGER NOT NULL,
    backoff_multiplier    DOUBLE PRECISION NOT NULL,
    secret                TEXT NOT NULL,
    previous_secret       TEXT NOT NULL,
    previous_secret_until BIGINT NOT NULL,
    active                BOOLEAN NOT NULL,
    disabled_reason       TEXT NOT NULL,
    consecutive_failures  INTEGER NOT NULL,
    total_deliveries      BIGINT NOT NULL,
    successful_deliveries BIGINT NOT NULL,
    failed_deliveries     BIGINT NOT NULL,
    last_success_at       BIGINT NOT NULL,
    last_failure_at       BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX subscriptions_project ON subscriptions (project_id, created_at);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    type            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    data            TEXT NOT NULL,
    attributes      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX events_project ON events (project_id, created_at);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE idempotency_keys (
    project_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, key)
);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    budget_start     INTEGER NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT NOT NULL,
    lease_until      BIGINT NOT NULL,
    last_status      INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    last_error_code  TEXT NOT NULL,
    last_duration_ms BIGINT NOT NULL,
    url              TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    delivered_at     BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, created_at);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    id            TEXT PRIMARY KEY,
    delivery_id   TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    number        INTEGER NOT NULL,
    url           TEXT NOT NULL,
    status_code   INTEGER NOT NULL,
    duration_ms   BIGINT NOT NULL,
    error_code    TEXT NOT NULL,
    error_message TEXT NOT NULL,
    response_body TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, number);
