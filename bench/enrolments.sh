#!/usr/bin/env bash
# Click to Pay enrolments end to end against `d1-registry issuer-sim` (5 ms latency): consumers
# with stored PI (the baseline, no outbound call) against consumers whose PI is fetched from the
# simulator, in the same run; then N concurrent enrolments of one consumer (single-flight).
# Extra arguments go to d1-bench, e.g. --enrolments 1000 --runs 3.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/build.sh
exec target/release/d1-bench enrolments --binary target/release/d1-registry "$@"
