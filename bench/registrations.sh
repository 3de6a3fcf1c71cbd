#!/usr/bin/env bash
# Registration load benchmark: a release build of d1-registry driven over HTTP on loopback,
# beside the raw SQLite upsert baseline, measured in the same run. See docs/benchmarks.md.
# Extra arguments go to d1-bench, e.g. --duration 5 --runs 3 --connections 32.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/build.sh
exec target/release/d1-bench registrations --binary target/release/d1-registry "$@"
