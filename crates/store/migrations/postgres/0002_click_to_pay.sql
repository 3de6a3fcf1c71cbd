-- Click to Pay, PostgreSQL (the same tables as migrations/sqlite/0004): the issuer backend we
-- call, durable enrolment jobs, the simulated directory and the notifications outbox. Jobs and
-- notifications are claimed with FOR UPDATE SKIP LOCKED and a lease, so several nodes share them.

-- GET …/operations/{operationId} reads any trail entry by its id.
CREATE INDEX operations_by_operation_id ON operations (operation_id);

-- Where an issuer's backend is and how to authenticate; the client secret is sealed by the KEK.
CREATE TABLE issuer_backends (
    issuer_id      TEXT PRIMARY KEY REFERENCES issuers (issuer_id),
    url            TEXT NOT NULL,
    client_id      TEXT,
    secret         BYTEA,
    send_card_id   BOOLEAN NOT NULL,
    pi_cache_ttl_s BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Work that outlives a request: ENROL (a Click to Pay enrolment, with its PENDING trail entry)
-- and SYNC (push a consumer's changed or deleted PI to the directory). A job is leased while
-- it runs; an expired lease (a node that died) lets another take it. billing is the enrolment
-- body's address, sealed under the consumer's data key.
CREATE TABLE c2p_jobs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('ENROL', 'SYNC')),
    issuer_id      TEXT NOT NULL,
    consumer_ref   BIGINT NOT NULL REFERENCES consumers (id),
    operation_id   UUID,
    card_id        TEXT,
    billing        BYTEA,
    correlation_id TEXT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    lease_until    BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX c2p_jobs_by_consumer ON c2p_jobs (consumer_ref, id);

-- The simulated Click to Pay directory: it stands for the card network's system, the one
-- place where fetched PI may rest. Each profile and each card has its own data key under the KEK.
CREATE TABLE directory_profiles (
    issuer_id   TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    profile     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, consumer_id)
);
CREATE TABLE directory_cards (
    issuer_id   TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    card_id     TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    sealed      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, consumer_id, card_id)
);

-- Card operation notifications to the issuer backend, sent in order per card until a 2xx;
-- a delivered one is deleted, one undelivered for 24 h is DEAD. body holds no PI.
CREATE TABLE notifications (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issuer_id       TEXT NOT NULL,
    card_id         TEXT NOT NULL,
    operation_id    UUID NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'DEAD')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);
CREATE INDEX notifications_due ON notifications (state, next_attempt_at);
CREATE INDEX notifications_by_card ON notifications (issuer_id, card_id, id);
