#!/usr/bin/env bash
# Card registration load benchmark: consumer registrations, Register card for consumers
# registered beforehand, and Register card for new consumerIds (registered implicitly), runs
# alternating on one release build. Each card is a fresh JWE prepared before the timed window.
# Extra arguments go to d1-bench, e.g. --duration 5 --runs 3 --cards 100000.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two builds, not one: built together, the bench's dependencies would add features to crates
# the server shares (rustix's "fs", through tempfile), and the next `cargo run --release` would
# rebuild and re-link the server. Built alone, the server is exactly what `cargo run` builds.
cargo build --release --quiet -p d1-registry
cargo build --release --quiet -p d1-bench
exec target/release/d1-bench cards --binary target/release/d1-registry "$@"
