#!/usr/bin/env bash
# schemathesis against a live server: a debug binary on a fresh data dir, one onboarded issuer
# with a key and a card product, a valid token, every check, a bounded number of examples per
# operation. It fails on any server error, schema violation or schema-valid request refused.
#
#   .ci/schemathesis.sh [BINARY]      (default target/debug/d1-registry; build it first)
#
# D1_SCHEMATHESIS_EXAMPLES (default 50) bounds the cases per operation and phase;
# D1_SCHEMATHESIS_VENV (default target/ci-venv) is the virtual environment it installs into.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
binary=${1:-target/debug/d1-registry}
venv=${D1_SCHEMATHESIS_VENV:-target/ci-venv}
examples=${D1_SCHEMATHESIS_EXAMPLES:-50}
here=.ci/schemathesis

if [ ! -x "$binary" ]; then
  echo "no binary at $binary: run cargo build first" >&2
  exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
  apt-get update -q && apt-get install -y -q openssl
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The service's own settings only, whatever the caller's environment holds.
unset D1_DATABASE_URL D1_CONFIG D1_KEK_FILE D1_DATA_DIR
export D1_DATA_DIR="$work/data"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
export D1__SERVER__PUBLIC_URL="$url"

openssl ecparam -name prime256v1 -genkey -noout -out "$work/issuer.pem" 2>/dev/null
openssl ec -in "$work/issuer.pem" -pubout -out "$work/issuer-public.pem" 2>/dev/null
"$binary" issuer add --issuer-id BANK000001 --assertion-key "$work/issuer-public.pem" --kid issuer-key-1 >/dev/null
"$binary" product add --issuer-id BANK000001 --card-product-id visa-classic --scheme VISA --bin 411111 >/dev/null

"$binary" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "$url/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

token=$("$binary" token --issuer-id BANK000001 --key "$work/issuer.pem" --kid issuer-key-1 --url "$url")
export D1_SCHEMATHESIS_JWE
D1_SCHEMATHESIS_JWE=$("$binary" card encrypt --pan 4111111111111111 --exp 1230 --url "$url")
export D1_SCHEMATHESIS_PRODUCT=visa-classic

# Resources for the generated requests to find (the config draws ids from these): two
# consumers with PI, two registered cards and a created one.
api="$url/banking/v2/issuers/BANK000001"
call() {
  curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"
}
for consumer in cust-0001 cust-0002; do
  call -X PUT "$api/consumers/$consumer" -d '{"personalInformation": {"language": "en-GB",
    "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
    "mobilePhoneNumber": {"countryCode": "+44", "phoneNumber": "7700900123"}}}'
done
export D1_SCHEMATHESIS_PANS="card-0001=4012888888881881 card-0002=5555555555554444"
for pair in $D1_SCHEMATHESIS_PANS; do
  jwe=$("$binary" card encrypt --pan "${pair#*=}" --exp 1230 --url "$url")
  call -X PUT "$api/cards/${pair%%=*}" \
    -d "{\"consumerId\": \"cust-0001\", \"cardProductId\": \"visa-classic\", \"encryptedData\": \"$jwe\"}"
done
export D1_SCHEMATHESIS_CREATED_CARD
D1_SCHEMATHESIS_CREATED_CARD=$(call -X POST "$api/cards" -d '{"consumerId": "cust-0002", "cardProductId": "visa-classic"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["cardId"])')
export D1_SCHEMATHESIS_URL="$url"
export D1_SCHEMATHESIS_BINARY
D1_SCHEMATHESIS_BINARY=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
export SCHEMATHESIS_HOOKS=hooks

mkdir -p target/schemathesis
status=0
# The hooks module is imported from the working directory. One worker: with two, the threads
# race in CPython 3.11's AST recursion counter (python/cpython#106905) while hypothesis
# describes its strategies, and the run fails with "AST constructor recursion depth mismatch".
(cd "$here" && "../../$venv/bin/schemathesis" --config-file schemathesis.toml run "$url/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --max-examples "$examples" \
  --workers 1 \
  --seed "${D1_SCHEMATHESIS_SEED:-17}" \
  --generation-database none \
  --no-color \
  --report junit --report-dir ../../target/schemathesis) || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- the server's last log lines" >&2
  tail -n 20 "$work/serve.log" >&2
fi
exit "$status"
