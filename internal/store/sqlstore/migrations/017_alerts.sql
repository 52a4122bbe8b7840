-- Alert rules, alerts and what the alert evaluator measures. Times are Unix
-- milliseconds (0 = not set); JSON values are text.

-- spec is the rule as the alert package defines it (JSON), so a new rule
-- field needs no migration.
CREATE TABLE alert_rules (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX alert_rules_name ON alert_rules (project_id, name);

-- An alert is one episode of a rule over one item, from pending or firing to
-- resolved (ended_at set). state is the evaluator's persisted state machine.
CREATE TABLE alerts (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    rule_id    TEXT NOT NULL,
    item       TEXT NOT NULL,
    status     TEXT NOT NULL,
    severity   TEXT NOT NULL,
    state      TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    ended_at   BIGINT NOT NULL
);
-- At most one current alert per rule and item.
CREATE UNIQUE INDEX alerts_current ON alerts (rule_id, item) WHERE ended_at = 0;
CREATE INDEX alerts_project ON alerts (project_id, started_at);

-- Every transition of an alert, with the event it caused (event_id is the
-- outbox row's id, "" when the transition notified nobody) and, for a
-- notification held back, why (note: "silenced by <id>", "inhibited: …").
CREATE TABLE alert_transitions (
    id          TEXT PRIMARY KEY,
    alert_id    TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    severity    TEXT NOT NULL,
    value       DOUBLE PRECISION,
    event_type  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    note        TEXT NOT NULL
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, at);

-- The last reading of a probed gauge (the provider's balance), with the
-- failures in a row of its probe: a failing probe is no data, never 0.
CREATE TABLE gauges (
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    item        TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    ok          BOOLEAN NOT NULL,
    failures    INTEGER NOT NULL,
    error       TEXT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, name, item)
);

-- Time-bucketed readings of cumulative counters (deliveries made per
-- subscription, dead letters per project), so rates and growth over a
-- window survive restarts and read the same on every node.
CREATE TABLE samples (
    project_id TEXT NOT NULL,
    series     TEXT NOT NULL,
    item       TEXT NOT NULL,
    bucket     BIGINT NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    taken_at   BIGINT NOT NULL,
    PRIMARY KEY (series, project_id, item, bucket)
);
CREATE INDEX samples_bucket ON samples (bucket);

-- Where each event rule has read the events table up to.
CREATE TABLE alert_cursors (
    rule_id  TEXT PRIMARY KEY,
    at       BIGINT NOT NULL,
    event_id TEXT NOT NULL
);

-- Silences hold back the notifications of the alerts their matchers match
-- (on the alert's labels: rule, rule_id, severity, metric, item) between
-- starts_at and ends_at.
CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    matchers   TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX silences_project ON silences (project_id, ends_at);
