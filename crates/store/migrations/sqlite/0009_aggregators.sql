-- Aggregators (contract section 4): a party that signs assertions for several issuers. Its id
-- follows the issuerId rule and shares the issuers' namespace; its kids are unique across
-- issuers and aggregators (both checked by the store's rules, which see both tables).
CREATE TABLE aggregators (
    aggregator_id TEXT PRIMARY KEY,
    require_jti   INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE aggregator_keys (
    kid           TEXT PRIMARY KEY,
    aggregator_id TEXT NOT NULL REFERENCES aggregators (aggregator_id),
    public_jwk    TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- The issuers an aggregator signs for.
CREATE TABLE aggregator_issuers (
    aggregator_id TEXT NOT NULL REFERENCES aggregators (aggregator_id),
    issuer_id     TEXT NOT NULL REFERENCES issuers (issuer_id),
    PRIMARY KEY (aggregator_id, issuer_id)
) WITHOUT ROWID;

-- `issuer add|set --require-jti on`: an assertion without jti is refused.
ALTER TABLE issuers ADD COLUMN require_jti INTEGER NOT NULL DEFAULT 0;

-- The aggregator a write was made through, when it was.
ALTER TABLE operations ADD COLUMN aggregator_id TEXT;
