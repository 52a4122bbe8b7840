-- SNS topics: a named fan-out point of a project. Publishing to a topic is
-- publishing a Carrier event of type "sns.<name>" (see internal/topic);
-- subscriptions to a topic are ordinary subscriptions to that event type, so
-- this table holds only what SNS keeps about the topic itself. attributes is
-- a JSON object of the settable SNS attributes (DisplayName, Policy, …),
-- tags a JSON object of tag keys to values.
CREATE TABLE topics (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    fifo          BOOLEAN NOT NULL,
    content_dedup BOOLEAN NOT NULL,
    attributes    TEXT NOT NULL,
    tags          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX topics_name ON topics (project_id, name);
