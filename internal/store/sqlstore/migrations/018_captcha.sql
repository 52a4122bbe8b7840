-- CAPTCHA verification sites and the disaster-recovery tickets already used.
-- keys is the vendor credentials as JSON, sealed at rest when at-rest
-- encryption is on; settings is the site's policy, deadline and thresholds
-- (JSON, as the captcha package defines them).
CREATE TABLE captcha_sites (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    vendor     TEXT NOT NULL,
    keys       TEXT NOT NULL,
    settings   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX captcha_sites_name ON captcha_sites (project_id, name);

-- A disaster-recovery ticket is accepted once: its hash is recorded when it
-- is, until the ticket could no longer be fresh.
CREATE TABLE captcha_dr_tickets (
    hash       TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    used_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX captcha_dr_tickets_expires ON captcha_dr_tickets (expires_at);
