#!/usr/bin/env bash
# Runs the tests that frontdoor's Pingora patches add inside the vendored crates
# (vendor/PATCHES.md). A crate replaced through `[patch.crates-io]` is not a member of the
# workspace, so `cargo test` cannot build its tests here: the patched crates are copied to a
# scratch workspace of their own (pingora-core and pingora-proxy built against the other patched
# crates, as in frontdoor) and tested there, with the lock file committed for it (vendor/tests.Cargo.lock:
# the workspace's versions and the crates' dev-dependencies; regenerate it after an update by
# copying Cargo.lock into such a scratch workspace and running `cargo metadata` there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
WORK="$(mktemp -d /tmp/frontdoor-vendor-tests.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp -r vendor/pingora-core vendor/pingora-http vendor/pingora-proxy vendor/httparse "$WORK/"
cat > "$WORK/Cargo.toml" <<'TOML'
[workspace]
members = ["pingora-core", "pingora-http", "pingora-proxy", "httparse"]
resolver = "2"

[patch.crates-io]
pingora-http = { path = "pingora-http" }
pingora-core = { path = "pingora-core" }
httparse = { path = "httparse" }
TOML
# The Cargo.toml that crates.io publishes for pingora-proxy leaves out tokio-test, which its
# unit tests use.
printf '\n[dev-dependencies.tokio-test]\nversion = "0.4"\n' >> "$WORK/pingora-proxy/Cargo.toml"
# httparse's criterion benches are not run here; dropping that dev-dependency spares building it.
sed -i '/^\[dev-dependencies.criterion\]$/,/^$/d' "$WORK/httparse/Cargo.toml"
cp vendor/tests.Cargo.lock "$WORK/Cargo.lock"
cd "$WORK"
export CARGO_TARGET_DIR="$ROOT/target/vendor-tests"
# Every test of pingora-http: patches 0001-0003 and 0007 (headers pushed into the wire form).
cargo test --locked -p pingora-http --lib
# Patch 0006: the idle watch of a pooled connection (connectors/idle_watch.rs).
cargo test --locked -p pingora-core --lib connectors::idle_watch
# Patch 0011: the HTTP/1 client hands the upstream's response header over (its unit tests).
cargo test --locked -p pingora-core --lib protocols::http::v1::client
# Every unit test of pingora-proxy: patch 0008 (hop-by-hop fields removed only when present)
# and the request policy it changes (proxy_common.rs).
cargo test --locked -p pingora-proxy --lib
# Patch 0010: httparse's SIMD scans step by whole blocks (its unit tests, the new one included,
# and its URI suite).
cargo test --locked -p httparse --lib --tests
