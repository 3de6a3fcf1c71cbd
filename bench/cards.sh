#!/usr/bin/env bash
# Card registration load benchmark: consumer registrations, Register card for consumers
# registered beforehand, Register card for new consumerIds (registered implicitly), and card
# life-cycle operations (suspend and resume pairs), runs alternating on one release build.
# Each card is a fresh JWE prepared before the timed window. Notifications of every card
# operation are on, with issuer-sim as the issuer's backend (--notification-batch-size N).
# Extra arguments go to d1-bench, e.g. --duration 5 --runs 3 --cards 100000.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/build.sh
exec target/release/d1-bench cards --binary target/release/d1-registry "$@"
