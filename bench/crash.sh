#!/usr/bin/env bash
# Crash safety: 16 writers (registrations with PI, updates, card registrations with a JWE,
# implicit registrations, life-cycle operations) against a release build, SIGKILL at a random
# moment of each of 10 rounds, and after each restart everything acknowledged read back in
# full (docs/benchmarks.md, "Crash safety"). On SQLite, then on PostgreSQL when
# D1_BENCH_DATABASE_URL or D1_TEST_DATABASE_URL names a database (it works in a scratch schema).
# Extra arguments go to d1-bench, e.g. --rounds 20 --seconds 6. Exits non-zero on any loss.
# BINARY=target/debug/d1-registry uses that binary and a debug d1-bench instead of a release
# build (the short form CI runs after `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
if [ -z "${BINARY:-}" ]; then
  bench/build.sh
  BINARY="$target/release/d1-registry"
  BENCH="$target/release/d1-bench"
else
  cargo build --quiet -p d1-bench
  BENCH="$target/debug/d1-bench"
fi
url="${D1_BENCH_DATABASE_URL:-${D1_TEST_DATABASE_URL:-}}"
env -u D1_BENCH_DATABASE_URL "$BENCH" crash --binary "$BINARY" "$@"
if [ -n "$url" ]; then
  "$BENCH" crash --binary "$BINARY" --database-url "$url" "$@"
fi
