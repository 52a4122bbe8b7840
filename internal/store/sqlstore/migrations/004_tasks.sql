-- Async tasks sent to upstream solving providers, their history, dead letters
-- (requests that arrived but could not be processed) and singleton locks.
-- Times are Unix milliseconds, 0 = not set; JSON values are text.

CREATE TABLE tasks (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL,
    method              TEXT NOT NULL,
    params              TEXT NOT NULL,
    metadata            TEXT NOT NULL,
    status              TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    solution            TEXT NOT NULL,
    via                 TEXT NOT NULL,
    error_code          TEXT NOT NULL,
    error_message       TEXT NOT NULL,
    cost                TEXT NOT NULL,
    callback_token_hash TEXT NOT NULL,
    submit_attempts     INTEGER NOT NULL,
    next_submit_at      BIGINT NOT NULL,
    next_poll_at        BIGINT NOT NULL,
    polls               INTEGER NOT NULL,
    published_status    TEXT NOT NULL,
    lease_owner         TEXT NOT NULL,
    lease_until         BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    submitted_at        BIGINT NOT NULL,
    completed_at        BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL
);
CREATE INDEX tasks_project ON tasks (project_id, created_at);
-- A task without a callback token (empty hash) is not looked up by token.
CREATE UNIQUE INDEX tasks_token ON tasks (callback_token_hash) WHERE callback_token_hash <> '';
-- The submitter, the fallback poller, the expirer and the publish outbox each
-- read only the few rows in their own partial index.
CREATE INDEX tasks_submit ON tasks (next_submit_at) WHERE status = 'pending';
CREATE INDEX tasks_poll ON tasks (next_poll_at) WHERE status = 'submitted';
CREATE INDEX tasks_expire ON tasks (expires_at) WHERE status IN ('pending', 'submitted');
CREATE INDEX tasks_publish ON tasks (updated_at) WHERE status <> published_status;
CREATE INDEX tasks_completed ON tasks (completed_at) WHERE completed_at > 0;

-- seq orders the entries of one task that share a timestamp, in insertion order.
CREATE TABLE task_history (
    id         TEXT PRIMARY KEY,
    task_id    TEXT NOT NULL,
    project_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    message    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX task_history_task ON task_history (task_id, at, seq);

CREATE TABLE dead_letters (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    source       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    message      TEXT NOT NULL,
    method       TEXT NOT NULL,
    query_string TEXT NOT NULL,
    body         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    status       TEXT NOT NULL,
    redrives     INTEGER NOT NULL,
    last_error   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    redriven_at  BIGINT NOT NULL
);
CREATE INDEX dead_letters_project ON dead_letters (project_id, created_at);
CREATE INDEX dead_letters_status ON dead_letters (status);

-- Singleton leases (the poller, the expirer, …): one owner at a time until until.
CREATE TABLE locks (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until BIGINT NOT NULL
);
