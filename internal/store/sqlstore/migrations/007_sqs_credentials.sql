-- Access keys for the SQS protocol endpoint. Signature Version 4 needs the
-- secret itself to verify a request, so it is stored as AWS stores it.
-- Times are Unix milliseconds, 0 = not set.

CREATE TABLE sqs_credentials (
    access_key_id TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    secret        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT NOT NULL
);
CREATE INDEX sqs_credentials_project ON sqs_credentials (project_id);
