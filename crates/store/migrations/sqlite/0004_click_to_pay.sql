-- Click to Pay: the issuer backend we call, durable enrolment jobs, the simulated directory and
-- the notifications outbox.

-- GET …/operations/{operationId} reads any trail entry by its id.
CREATE INDEX operations_by_operation_id ON operations (operation_id);

-- Where an issuer's backend is and how to authenticate; the client secret is sealed by the KEK.
CREATE TABLE issuer_backends (
    issuer_id      TEXT PRIMARY KEY REFERENCES issuers (issuer_id),
    url            TEXT NOT NULL,
    client_id      TEXT,
    secret         BLOB,
    send_card_id   INTEGER NOT NULL,
    pi_cache_ttl_s INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- Work that outlives a request: ENROL (a Click to Pay enrolment, with its PENDING trail entry)
-- and SYNC (push a consumer's changed or deleted PI to the directory). A job is leased while
-- it runs; an expired lease (a node that died) lets another take it. billing is the enrolment
-- body's address, sealed under the consumer's data key.
CREATE TABLE c2p_jobs (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('ENROL', 'SYNC')),
    issuer_id      TEXT NOT NULL,
    consumer_ref   INTEGER NOT NULL REFERENCES consumers (id),
    operation_id   TEXT,
    card_id        TEXT,
    billing        BLOB,
    correlation_id TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_until    INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);
CREATE INDEX c2p_jobs_by_consumer ON c2p_jobs (consumer_ref, id);

-- The simulated Click to Pay directory: it stands for the card network's system, the one
-- place where fetched PI may rest. Each profile and each card has its own data key under the KEK.
CREATE TABLE directory_profiles (
    issuer_id   TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    profile     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, consumer_id)
) WITHOUT ROWID;
CREATE TABLE directory_cards (
    issuer_id   TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    card_id     TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, consumer_id, card_id)
) WITHOUT ROWID;

-- Card operation notifications to the issuer backend, sent in order per card until a 2xx;
-- a delivered one is deleted, one undelivered for 24 h is DEAD. body holds no PI.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    issuer_id       TEXT NOT NULL,
    card_id         TEXT NOT NULL,
    operation_id    TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'DEAD')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX notifications_due ON notifications (state, next_attempt_at);
CREATE INDEX notifications_by_card ON notifications (issuer_id, card_id, id);
