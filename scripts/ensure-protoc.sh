#!/usr/bin/env bash
# Makes sure `protoc` and the protobuf well-known types are available: the
# etcd client crate (the `etcd` feature, which the tests, examples and
# benches build with) generates its gRPC code at build time with them.
# When missing, installs Debian's protobuf-compiler and libprotobuf-dev if
# running as root, otherwise says how to install them. Sourced by demo.sh
# and test.sh.

protoc_missing=()
command -v protoc >/dev/null 2>&1 || protoc_missing+=(protobuf-compiler)
# google/protobuf/descriptor.proto and struct.proto, which etcd's .proto
# files import: protoc looks for them in /usr/include.
[ -e /usr/include/google/protobuf/descriptor.proto ] || protoc_missing+=(libprotobuf-dev)

if [ "${#protoc_missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "missing: installing Debian's ${protoc_missing[*]} package(s)..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${protoc_missing[@]}" >/dev/null
    command -v protoc >/dev/null 2>&1 || { echo "installing protoc failed" >&2; exit 1; }
  else
    cat >&2 <<MSG
missing: ${protoc_missing[*]}; this script installs them only when run as root.
Install them as root, then run this command again:
    apt-get update && apt-get install -y --no-install-recommends ${protoc_missing[*]}
MSG
    exit 1
  fi
fi
