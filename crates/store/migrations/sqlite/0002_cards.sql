-- Cards and card products.

-- A consumerId's lives: registering a DELETED consumer again starts generation + 1, and only
-- the cards of the current generation are listed.
ALTER TABLE consumers ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;

CREATE TABLE card_products (
    issuer_id       TEXT NOT NULL,
    card_product_id TEXT NOT NULL,
    scheme          TEXT NOT NULL,
    bin             TEXT NOT NULL,
    validity_months INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, card_product_id)
) WITHOUT ROWID;

-- One row per card registration. sealed is {pan, exp} under the consumer's data key (NULL
-- once shredded); pan_mac is a keyed MAC of the PAN, kept after deletion so that a deleted
-- PAN is never registered again. last4, expiry and scheme stay for display.
CREATE TABLE cards (
    id                  INTEGER PRIMARY KEY,
    issuer_id           TEXT NOT NULL,
    card_id             TEXT NOT NULL,
    consumer_ref        INTEGER NOT NULL REFERENCES consumers (id),
    consumer_generation INTEGER NOT NULL,
    card_product_id     TEXT NOT NULL,
    state               TEXT NOT NULL,
    pan_mac             BLOB NOT NULL,
    sealed              BLOB,
    last4               TEXT NOT NULL,
    expiry              TEXT NOT NULL,
    scheme              TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
-- At most one card per (issuer, cardId) is live at a time: the single writer checks it
-- before every insert (sqlite/cards.rs), which spares a second random-key index per card.
CREATE INDEX cards_by_card_id ON cards (issuer_id, card_id);
CREATE UNIQUE INDEX cards_by_pan ON cards (issuer_id, pan_mac);
CREATE INDEX cards_by_consumer ON cards (consumer_ref, consumer_generation);

-- Create card's Idempotency-Key: a retry with the same key and body gets the first answer.
CREATE TABLE idempotency_keys (
    issuer_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    card_id      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, key)
) WITHOUT ROWID;
