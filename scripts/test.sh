#!/usr/bin/env bash
# Runs the whole test suite (installing redis-server, and etcd for the test
# kit's EtcdCluster, when missing): unit, integration, compile-fail
# (trybuild), example and doc tests. Tests start
# their own redis-server processes on free ports. Then, unless arguments
# narrow the run, the suites of one server run again on two other servers:
# - Redis 6.2, the oldest version protocol v2 supports (scripts/redis-6.2.sh
#   fetches it). Not the security suite: that build of 6.2 has no TLS, and
#   its ACL log also records a `CLIENT` command redis-rs sends when it
#   connects, which the suite's empty-log checks do not expect (7.0's log
#   does not show it).
# - Valkey 8.1 (scripts/valkey.sh fetches it), with the cluster attribute
#   and lock-kind suites on clusters of Valkey nodes formed by its
#   valkey-cli, and the security suite but its TLS tests: that build has no
#   TLS (and crashes when asked to open a TLS port). The Sentinel suite's TLS
#   tests (`over_tls_*`) are skipped there too.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-redis.sh
source scripts/ensure-protoc.sh
source scripts/ensure-etcd.sh
# One-off builds gain nothing from incremental caches, which took 3.4 GB of
# target/ in a fresh run (a caller may still set CARGO_INCREMENTAL).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# A cold run writes about 5 GB (target/, the Redis and Valkey builds, the
# servers' scratch directories); a CI run once failed with a full disk, so
# the log says what was free.
echo "scripts/test.sh: free disk space: $(df -h --output=avail . | tail -1 | tr -d ' ') here," \
  "$(df -h --output=avail "${TMPDIR:-/tmp}" | tail -1 | tr -d ' ') in ${TMPDIR:-/tmp}" >&2
if [ "$#" -gt 0 ]; then
  exec cargo test --workspace --no-fail-fast "$@"
fi
status=0
cargo test --workspace --no-fail-fast || status=$?
# The nemesis checker's own unit tests (how it classes overlaps). An
# example's tests run when it is named; `test = true` in Cargo.toml would run
# them by default, but then `cargo test` builds the example as a test harness
# instead of the binary tests/examples.rs runs.
cargo test --workspace --no-fail-fast --example nemesis_check || status=$?
# The suites of one server, run again on each other server below.
one_server=(--test lock_protocol --test queue --test handoff --test renewal
  --test faults --test lost_lock --test attribute --test context
  --test reentrancy --test lock_kinds)
redis_6_2=$(scripts/redis-6.2.sh)
# --workspace, as above: with `-p distlock` cargo resolves features for one
# package, which rebuilt syn and everything above it (a second copy on disk).
REDIS_SERVER_BIN="$redis_6_2" cargo test --workspace --no-fail-fast "${one_server[@]}" \
  || status=$?
valkey=$(scripts/valkey.sh)
REDIS_SERVER_BIN="$valkey" REDIS_CLI_BIN="$(dirname "$valkey")/valkey-cli" \
  cargo test --workspace --no-fail-fast "${one_server[@]}" \
  --test attribute_on_cluster --test lock_kinds_on_cluster \
  --test sentinel --test attribute_on_sentinel --test replicas \
  -- --skip tls || status=$?
REDIS_SERVER_BIN="$valkey" cargo test --workspace --no-fail-fast --test security \
  -- --skip tls || status=$?
exit "$status"
