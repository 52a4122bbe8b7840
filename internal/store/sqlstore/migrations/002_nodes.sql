-- Live Carrier processes. A lease whose owner stops sending heartbeats is
-- given back, so work held by a killed process is picked up within seconds.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
CREATE INDEX deliveries_leased ON deliveries (lease_owner) WHERE lease_until > 0;
