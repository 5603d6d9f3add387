#!/usr/bin/env bash
# Runs the quickstart demo against a throwaway redis-server (installing it when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-redis.sh
exec cargo run --quiet --example quickstart
