-- d1-registry schema, PostgreSQL. The same tables as on SQLite (migrations/sqlite); times are
-- Unix milliseconds (UTC). Concurrency control is described in docs/architecture.md.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE service_keys (
    kid        TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('sig', 'enc')),
    wrapped    BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE issuers (
    issuer_id        TEXT PRIMARY KEY,
    pi_storage       TEXT NOT NULL CHECK (pi_storage IN ('allowed', 'forbidden')),
    click_to_pay     BOOLEAN NOT NULL,
    lookalike_policy TEXT NOT NULL DEFAULT 'warn',
    created_at       BIGINT NOT NULL
);

CREATE TABLE issuer_keys (
    kid        TEXT PRIMARY KEY,
    issuer_id  TEXT NOT NULL REFERENCES issuers (issuer_id),
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Shared by every node, so that a replayed assertion is refused whichever node sees it.
CREATE TABLE used_jtis (
    issuer_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, jti)
);
CREATE INDEX used_jtis_by_expiry ON used_jtis (expires_at);

-- One row per (issuer, consumerId): the unique key is what makes two live consumers with one
-- consumerId impossible. Every write to a consumer, its cards included, locks this row first.
CREATE TABLE consumers (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issuer_id   TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    state       TEXT NOT NULL,
    pi_source   TEXT NOT NULL,
    wrapped_key BYTEA,
    pi          BYTEA,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    generation  BIGINT NOT NULL DEFAULT 1,
    UNIQUE (issuer_id, consumer_id)
);

-- operation_id is a UUIDv7, unique by construction; the trail is read by consumer only, so
-- one index serves it and each registration writes one index entry fewer.
CREATE TABLE operations (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer_ref   BIGINT NOT NULL REFERENCES consumers (id),
    operation_id   UUID NOT NULL,
    operation      TEXT NOT NULL,
    status         TEXT NOT NULL,
    start_time     BIGINT NOT NULL,
    end_time       BIGINT,
    card_id        TEXT,
    reason         TEXT,
    reason_code    TEXT,
    correlation_id TEXT,
    user_id        TEXT
);
CREATE INDEX operations_by_consumer ON operations (consumer_ref, id);

CREATE TABLE card_products (
    issuer_id       TEXT NOT NULL,
    card_product_id TEXT NOT NULL,
    scheme          TEXT NOT NULL,
    bin             TEXT NOT NULL,
    validity_months INTEGER NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, card_product_id)
);

CREATE TABLE cards (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issuer_id           TEXT NOT NULL,
    card_id             TEXT NOT NULL,
    consumer_ref        BIGINT NOT NULL REFERENCES consumers (id),
    consumer_generation BIGINT NOT NULL,
    card_product_id     TEXT NOT NULL,
    state               TEXT NOT NULL,
    pan_mac             BYTEA NOT NULL,
    sealed              BYTEA,
    last4               TEXT NOT NULL,
    expiry              TEXT NOT NULL,
    scheme              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
-- With several writers the database itself must refuse a second live card per cardId, and
-- any second card per PAN (deleted ones included).
CREATE UNIQUE INDEX cards_live_card_id ON cards (issuer_id, card_id) WHERE state <> 'DELETED';
CREATE INDEX cards_by_card_id ON cards (issuer_id, card_id);
CREATE UNIQUE INDEX cards_by_pan ON cards (issuer_id, pan_mac);
CREATE INDEX cards_by_consumer ON cards (consumer_ref, consumer_generation);

CREATE TABLE idempotency_keys (
    issuer_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    card_id      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, key)
);
