-- d1-registry schema, SQLite. Times are Unix milliseconds (UTC).

-- Facts about the database itself, such as the fingerprint of the KEK that protects it.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The service's own key pairs (token signing, JWE), private halves wrapped by the KEK.
CREATE TABLE service_keys (
    kid        TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('sig', 'enc')),
    wrapped    BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
) WITHOUT ROWID;

CREATE TABLE issuers (
    issuer_id        TEXT PRIMARY KEY,
    pi_storage       TEXT NOT NULL CHECK (pi_storage IN ('allowed', 'forbidden')),
    click_to_pay     INTEGER NOT NULL,
    lookalike_policy TEXT NOT NULL DEFAULT 'warn',
    created_at       INTEGER NOT NULL
) WITHOUT ROWID;

-- Issuers' ES256 assertion keys. A kid is unique across all issuers.
CREATE TABLE issuer_keys (
    kid        TEXT PRIMARY KEY,
    issuer_id  TEXT NOT NULL REFERENCES issuers (issuer_id),
    public_jwk TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Assertion jtis already exchanged, kept until the assertion expires.
CREATE TABLE used_jtis (
    issuer_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, jti)
) WITHOUT ROWID;

-- One row per (issuer, consumerId), reused when a deleted consumerId is registered again.
-- The rowid grows with each new consumer, so the trail index below appends.
-- wrapped_key is the consumer's data key under the KEK; NULL once shredded.
-- pi is the PI sealed under that data key.
CREATE TABLE consumers (
    id          INTEGER PRIMARY KEY,
    issuer_id   TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    pi_source   TEXT NOT NULL,
    wrapped_key BLOB,
    pi          BLOB,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (issuer_id, consumer_id)
);

-- The operations trail: facts only, never PI. operation_id is a UUIDv7, time-ordered.
CREATE TABLE operations (
    id             INTEGER PRIMARY KEY,
    consumer_ref   INTEGER NOT NULL REFERENCES consumers (id),
    operation_id   TEXT NOT NULL,
    operation      TEXT NOT NULL,
    status         TEXT NOT NULL,
    start_time     INTEGER NOT NULL,
    end_time       INTEGER,
    card_id        TEXT,
    reason         TEXT,
    reason_code    TEXT,
    correlation_id TEXT,
    user_id        TEXT
);
CREATE INDEX operations_by_consumer ON operations (consumer_ref, id);
CREATE UNIQUE INDEX operations_by_operation_id ON operations (operation_id);
