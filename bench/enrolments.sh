#!/usr/bin/env bash
# Click to Pay enrolments end to end against `d1-registry issuer-sim` (5 ms latency): consumers
# with stored PI (the baseline, no outbound call) against consumers whose PI is fetched from the
# simulator, in the same run; then N concurrent enrolments of one consumer (single-flight).
# Extra arguments go to d1-bench, e.g. --enrolments 1000 --runs 3.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two builds, not one: built together, the bench's dependencies would add features to crates
# the server shares (rustix's "fs", through tempfile), and the next `cargo run --release` would
# rebuild and re-link the server. Built alone, the server is exactly what `cargo run` builds.
cargo build --release --quiet -p d1-registry
cargo build --release --quiet -p d1-bench
exec target/release/d1-bench enrolments --binary target/release/d1-registry "$@"
