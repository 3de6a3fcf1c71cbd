#!/usr/bin/env bash
# Registration load benchmark: a release build of d1-registry driven over HTTP on loopback,
# beside the raw SQLite upsert baseline, measured in the same run. See docs/benchmarks.md.
# Extra arguments go to d1-bench, e.g. --duration 5 --runs 3 --connections 32.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two builds, not one: built together, the bench's dependencies would add features to crates
# the server shares (rustix's "fs", through tempfile), and the next `cargo run --release` would
# rebuild and re-link the server. Built alone, the server is exactly what `cargo run` builds.
cargo build --release --quiet -p d1-registry
cargo build --release --quiet -p d1-bench
exec target/release/d1-bench registrations --binary target/release/d1-registry "$@"
