-- The operator portal (contract section 11). An operator's issuers are `all` or issuer ids
-- separated by commas; the password is an Argon2id PHC string, never the password.
CREATE TABLE operators (
    username             TEXT PRIMARY KEY,
    role                 TEXT NOT NULL,
    issuers              TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    must_change_password INTEGER NOT NULL,
    disabled             INTEGER NOT NULL DEFAULT 0,
    failed_sign_ins      INTEGER NOT NULL DEFAULT 0,
    locked_until         INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) WITHOUT ROWID;

-- Sessions live in the database, so that any node serves any operator. id_hash is the SHA-256
-- of the cookie value: the table alone does not let anyone in.
CREATE TABLE operator_sessions (
    id_hash      BLOB PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES operators (username),
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX operator_sessions_by_operator ON operator_sessions (username);

-- The operator audit trail: facts only, never a PAN or PI.
CREATE TABLE operator_audit (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    operator    TEXT NOT NULL,
    action      TEXT NOT NULL,
    issuer_id   TEXT,
    consumer_id TEXT,
    card_id     TEXT,
    outcome     TEXT NOT NULL
);
CREATE INDEX operator_audit_by_time ON operator_audit (at);
CREATE INDEX operator_audit_by_operator ON operator_audit (operator, at);
