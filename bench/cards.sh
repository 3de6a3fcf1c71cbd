#!/usr/bin/env bash
# Card registration load benchmark: consumer registrations, Register card for consumers
# registered beforehand, and Register card for new consumerIds (registered implicitly), runs
# alternating on one release build. Each card is a fresh JWE prepared before the timed window.
# Extra arguments go to d1-bench, e.g. --duration 5 --runs 3 --cards 100000.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/build.sh
exec target/release/d1-bench cards --binary target/release/d1-registry "$@"
