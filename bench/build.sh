#!/usr/bin/env bash
# Builds the release binaries the bench scripts run: the server, then the load generator.
# Two builds, not one: built together, the bench's dependencies would add features to crates
# the server shares (rustix's "fs", through tempfile), and the next `cargo run --release` would
# rebuild and re-link the server. Built alone, the server is exactly what `cargo run` builds.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p d1-registry
cargo build --release --quiet -p d1-bench
