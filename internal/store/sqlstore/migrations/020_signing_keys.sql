-- Signing keys Carrier signs with on behalf of every node, such as the RSA
-- key of SNS message signatures (internal/sns/signing): one row per purpose,
-- written once by whichever node needs it first and read by all, so every
-- node signs with the same key and certificate, across restarts. private_key
-- is PEM, sealed when CARRIER_SECRET_KEY is set (internal/secret).
CREATE TABLE signing_keys (
    name        TEXT PRIMARY KEY,
    private_key TEXT NOT NULL,
    certificate TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
