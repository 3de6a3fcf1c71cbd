"""Values the document cannot state, filled in for schema-valid (positive) cases only.

The document gives the shape of these, not their value:
- an `encryptedData` must decrypt under the service's key: a positive case gets a real JWE
  (made by `d1-registry card encrypt`), and a renew one with a later expiry each time;
- a `cardProductId` must be a product onboarded for the issuer: it gets the onboarded one;
- the cards of one v1 call must have distinct cardIds: later repeats are dropped;
- a created card (`crd_…`) is renewed and replaced without card data, a registered one with
  it (and a replace with a `newCardId`).
A 400 on a positive case then means that the document and the server disagree. Negative cases
are left alone.
"""

import os
import re
import subprocess
import uuid

import schemathesis
from schemathesis import GenerationMode

BINARY = os.environ["D1_SCHEMATHESIS_BINARY"]
URL = os.environ["D1_SCHEMATHESIS_URL"]
JWE = os.environ["D1_SCHEMATHESIS_JWE"]
PRODUCT = os.environ["D1_SCHEMATHESIS_PRODUCT"]
PAN = "4111111111111111"
# The PANs of the cards the script registered, by cardId; any other card has PAN.
PANS = dict(pair.split("=") for pair in os.environ.get("D1_SCHEMATHESIS_PANS", "").split())
SHAPE = {
    "encryptedData": re.compile(r"^[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){4}$"),
    "cardProductId": re.compile(r"^[A-Za-z0-9_-]{1,48}$"),
}
OPERATION = re.compile(r"/cards/(?P<card>[^/]+)/operations[:/](?P<name>renew|replace)$")
renewals = 0


def renewal_jwe(card):
    """The card's PAN with an expiry later than any given before."""
    global renewals
    renewals += 1
    month, year = renewals % 12 + 1, 31 + renewals // 12
    exp = f"{month:02d}{year:02d}"
    return subprocess.run(
        [BINARY, "card", "encrypt", "--pan", PANS.get(card, PAN), "--exp", exp, "--url", URL],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def fill(body, jwe):
    if not isinstance(body, dict):
        return
    values = {"encryptedData": jwe, "cardProductId": PRODUCT}
    for field, shape in SHAPE.items():
        if isinstance(body.get(field), str) and shape.match(body[field]):
            body[field] = values[field]
    cards = body.get("cards")
    if isinstance(cards, list):
        seen, kept = set(), []
        for card in cards:
            key = card.get("cardId") if isinstance(card, dict) else None
            if key not in seen:
                seen.add(key)
                kept.append(card)
            fill(card, jwe)
        cards[:] = kept


def positive(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


@schemathesis.hook
def before_call(context, case, kwargs):
    if not positive(case):
        return
    path = case.formatted_path
    operation = OPERATION.search(path)
    if operation is None:
        fill(case.body, JWE)
        return
    if not isinstance(case.body, dict):
        case.body = {}
    if operation["card"].startswith("crd_"):
        case.body.pop("encryptedData", None)
        return
    if operation["name"] == "renew":
        case.body["encryptedData"] = renewal_jwe(operation["card"])
    else:
        case.body["encryptedData"] = JWE
        case.body.setdefault("newCardId", uuid.uuid4().hex[:20])
