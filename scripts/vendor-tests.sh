#!/usr/bin/env bash
# Runs the tests that frontdoor's Pingora patches add inside the vendored crates
# (vendor/PATCHES.md). A crate replaced through `[patch.crates-io]` is not a member of the
# workspace, so `cargo test` cannot build its tests here: the crate is copied to a scratch
# directory and tested on its own, with the lock file committed for it
# (vendor/pingora-core.tests.Cargo.lock: the workspace's versions and the crate's
# dev-dependencies; regenerate it from Cargo.lock with `cargo metadata` in such a copy after an
# update).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
WORK="$(mktemp -d /tmp/frontdoor-vendor-tests.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp -r vendor/pingora-core "$WORK/pingora-core"
cp vendor/pingora-core.tests.Cargo.lock "$WORK/pingora-core/Cargo.lock"
# Patch 0006: the idle watch of a pooled connection (connectors/idle_watch.rs).
(cd "$WORK/pingora-core" \
  && CARGO_TARGET_DIR="$ROOT/target/vendor-tests" cargo test --locked --lib connectors::idle_watch)
