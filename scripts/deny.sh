#!/usr/bin/env bash
# Dependency policy with cargo-deny (deny.toml): licenses, bans and sources
# always; advisories only when the RustSec database can be fetched, since it
# is a git repository on GitHub, outside the package registries that CI
# reaches. Without it the advisories check is skipped with a notice, unless
# DENY_ADVISORIES=require (for a machine with the network), which makes a
# failed fetch an error. Installs cargo-deny from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
# Reuse an installed cargo-deny of the same minor release; otherwise install
# (or replace) it. The profile overrides cut the build of cargo-deny's own
# release profile (fat LTO, one codegen unit), which is most of the
# install's time on 2 cores; a check takes about a second either way.
if ! cargo deny --version 2>/dev/null | grep -q "^cargo-deny ${version%.*}\."; then
  start=$SECONDS
  env -u CARGO_TARGET_DIR \
    CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    cargo install cargo-deny --locked --version "$version"
  echo "deny.sh: cargo-deny installed in $((SECONDS - start)) s"
fi
cargo deny --version

# --workspace: the root manifest is a package as well as the workspace, and
# without it cargo-deny would take the `distlock` package alone as the root.
cargo deny --workspace --locked check licenses bans sources

# `fetch db` clones (or updates) the database into $CARGO_HOME/advisory-dbs;
# where GitHub cannot be reached it fails at once ("Could not resolve host").
if timeout 120 cargo deny fetch db; then
  cargo deny --workspace --locked check advisories
elif [ "${DENY_ADVISORIES:-}" = require ]; then
  echo "deny.sh: DENY_ADVISORIES=require, but the advisory database could not be fetched" >&2
  exit 1
else
  echo "deny.sh: advisories NOT checked: the RustSec advisory database could not be fetched (error above)" >&2
fi
