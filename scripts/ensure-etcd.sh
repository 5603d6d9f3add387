#!/usr/bin/env bash
# Makes sure an etcd binary is available for the test kit's EtcdCluster: the
# one ETCD_BIN names, or `etcd` on PATH (protoc, which building the etcd
# client needs, is scripts/ensure-protoc.sh's). When missing, installs
# Debian's etcd-server if running as root, otherwise says how to install
# it. Tests start their own throwaway members on free loopback ports: no
# etcd daemon is wanted on port 2379, so one that the package started is
# stopped. May be sourced or run.

missing=()
if [ -n "${ETCD_BIN:-}" ]; then
  if [ ! -x "$ETCD_BIN" ]; then
    echo "ETCD_BIN=$ETCD_BIN is not an executable file" >&2
    exit 1
  fi
elif ! command -v etcd >/dev/null 2>&1; then
  missing+=(etcd-server)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  return 0 2>/dev/null || exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "missing: installing Debian's ${missing[*]} package(s)..." >&2
  apt-get update -qq
  # policy-rc.d exit 101 asks invoke-rc.d not to start any service the
  # packages ship (etcd-server has an init script and a systemd unit); the
  # check below catches a daemon that started anyway.
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  installed=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || installed=$?
  if [ -n "$own_policy" ]; then rm -f "$policy"; fi
  [ "$installed" = 0 ] || { echo "installing ${missing[*]} failed" >&2; exit 1; }
  command -v etcd >/dev/null 2>&1 || { echo "installing etcd failed" >&2; exit 1; }
  # A packaged daemon would hold 2379/2380 and is not what the tests use.
  # Only the one on 2379 is stopped: the tests' own members (free ports)
  # of another run on this machine are left alone.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
  if command -v ss >/dev/null 2>&1; then
    daemon=$(ss -ltnpH 'sport = :2379' 2>/dev/null | grep '"etcd"' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true)
    if [ -n "$daemon" ]; then
      echo "the etcd-server package started a daemon on port 2379; stopping it" >&2
      if command -v service >/dev/null 2>&1; then service etcd stop >/dev/null 2>&1 || true; fi
      for pid in $daemon; do kill "$pid" 2>/dev/null || true; done
    fi
  fi
else
  cat >&2 <<MSG
missing: ${missing[*]}; this script installs them only when run as root.
Install them as root, then run this command again:
    apt-get update && apt-get install -y --no-install-recommends ${missing[*]}
(or point ETCD_BIN at an etcd binary). The tests start their own throwaway
etcd members on free loopback ports; nothing needs to run on port 2379.
MSG
  exit 1
fi
