#!/usr/bin/env bash
# Patch 0010 on its own (vendor/PATCHES.md): nanoseconds per request parse by the released
# httparse 1.10.1 and by frontdoor's patched copy, side by side in one process (bench/httparse/).
set -euo pipefail
cd "$(dirname "$0")/httparse"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../../target}/httparse-bench" cargo run --quiet --release --locked
