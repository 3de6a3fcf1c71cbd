#!/usr/bin/env bash
# Registrations' p99 from 32 connections with 5,000 idle keep-alive and 64 slowloris
# connections open, against the same load without them, in alternating runs of one release
# build on SQLite. See docs/benchmarks.md. Extra arguments go to d1-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
# The bench holds over 5,000 sockets; the service raises its own limit.
ulimit -n "$(ulimit -Hn)"
bench/build.sh
exec target/release/d1-bench hostile --binary target/release/d1-registry "$@"
