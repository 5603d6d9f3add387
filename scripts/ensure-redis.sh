#!/usr/bin/env bash
# Makes sure a redis-server binary is available: the one REDIS_SERVER_BIN
# names, or `redis-server` on PATH. When missing, installs Debian's package
# if running as root, otherwise says how to install it. Sourced by demo.sh
# and test.sh.

if [ -n "${REDIS_SERVER_BIN:-}" ]; then
  if [ -x "$REDIS_SERVER_BIN" ]; then return 0 2>/dev/null || exit 0; fi
  echo "REDIS_SERVER_BIN=$REDIS_SERVER_BIN is not an executable file" >&2
  exit 1
fi

if command -v redis-server >/dev/null 2>&1; then
  return 0 2>/dev/null || exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server is missing: installing Debian's redis-server package..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 || { echo "installing redis-server failed" >&2; exit 1; }
else
  cat >&2 <<'MSG'
redis-server is missing, and this script installs it only when run as root.
Install it as root, then run this command again:
    apt-get update && apt-get install -y redis-server     # Debian / Ubuntu
(or point REDIS_SERVER_BIN at a redis-server binary). The demo and the tests
start their own throwaway servers; nothing needs to run on port 6379.
MSG
  exit 1
fi
