-- The client certificate identities an issuer is bound to (contract section 4): a subject
-- DN in RFC 4514 form, or a SAN (DNS name or URI). An issuer with none is accepted over any
-- valid client certificate; one with some only over a certificate matching one of them.
CREATE TABLE issuer_client_certs (
    issuer_id TEXT NOT NULL REFERENCES issuers (issuer_id),
    kind      TEXT NOT NULL CHECK (kind IN ('subject', 'san')),
    value     TEXT NOT NULL,
    PRIMARY KEY (issuer_id, kind, value)
);
