#!/usr/bin/env bash
# Portal benchmark: an operator's search by PAN and the consumer page it leads to, with 1,000
# cards stored and with 100,000, in one run. See docs/benchmarks.md. On PostgreSQL:
# bench/portal.sh --database-url URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/build.sh
exec target/release/d1-bench portal --binary target/release/d1-registry --sizes 1000,100000 "$@"
