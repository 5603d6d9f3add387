#!/usr/bin/env bash
# Runs the whole test suite (installing redis-server when missing): unit,
# integration, compile-fail (trybuild), example and doc tests. Tests start
# their own redis-server processes on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-redis.sh
exec cargo test --workspace --no-fail-fast "$@"
