#!/usr/bin/env bash
# Growth benchmark: a fresh store filled to 1,000,000 consumers with PI over HTTP, measured at
# 100,000 and at 1,000,000 rows beside the raw upsert at the same rate and table size, in the
# same run. See docs/benchmarks.md. On PostgreSQL: bench/growth.sh --database-url URL.
# Extra arguments go to d1-bench, e.g. --sizes 100000,1000000 --duration 10 --runs 3.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/build.sh
exec target/release/d1-bench growth --binary target/release/d1-registry "$@"
