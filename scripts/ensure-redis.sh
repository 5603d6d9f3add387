#!/usr/bin/env bash
# Makes sure `redis-server` is on PATH: installs Debian's package when running
# as root, otherwise says how to install it. Sourced by demo.sh and test.sh.
set -euo pipefail

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
Install it, then run this command again:
    sudo apt-get install redis-server        # Debian / Ubuntu
(Tests and the demo start their own throwaway servers; nothing needs to run on port 6379.)
MSG
  exit 1
fi
