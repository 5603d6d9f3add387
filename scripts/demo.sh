#!/usr/bin/env bash
# Runs the quickstart demo against a throwaway redis-server (installing it,
# and protoc, which building the examples needs, when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-redis.sh
source scripts/ensure-protoc.sh
exec cargo run --quiet --example quickstart
