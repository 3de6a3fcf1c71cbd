#!/usr/bin/env bash
# Registration load benchmark on PostgreSQL: one node, two nodes round-robin, and latency at
# half the one-node peak, beside the raw pooled upsert on the same database, in one run.
# Needs a database it may create scratch schemas in: D1_BENCH_DATABASE_URL, else
# D1_TEST_DATABASE_URL. Extra arguments go to d1-bench, e.g. --duration 5 --runs 3.
set -euo pipefail
cd "$(dirname "$0")/.."
export D1_BENCH_DATABASE_URL="${D1_BENCH_DATABASE_URL:-${D1_TEST_DATABASE_URL:-}}"
if [ -z "$D1_BENCH_DATABASE_URL" ]; then
  echo "set D1_BENCH_DATABASE_URL (or D1_TEST_DATABASE_URL) to a PostgreSQL database" >&2
  exit 2
fi
bench/build.sh
exec target/release/d1-bench postgres --binary target/release/d1-registry "$@"
