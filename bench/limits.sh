#!/usr/bin/env bash
# Rate-limit benchmark: Register consumer at 10x the issuer's configured rate (100/s, burst
# 100) on a fixed schedule; prints the share answered 429 against 2xx and the p99 of the 2xx.
# Extra arguments go to d1-bench, e.g. --duration 10 --runs 3.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/build.sh
exec target/release/d1-bench limits --binary target/release/d1-registry "$@"
