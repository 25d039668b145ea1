#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60, or
# $FRONTDOOR_FUZZ_SECONDS; 0 skips) and fails on the first crash, leak or timeout.
# Stable Rust only: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags
# (-Zsanitizer=address, sanitizer coverage options).
# Each run starts from the committed seeds in fuzz/corpus/<target> (also the regression
# inputs of past crashes) and writes what it finds to fuzz/target/corpus/<target>, so the
# checkout stays clean; a crash input lands in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${1:-${FRONTDOOR_FUZZ_SECONDS:-60}}"
if [ "$SECONDS_EACH" = "0" ]; then
  echo "fuzzing skipped (0 seconds)"
  exit 0
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# One build for all targets; the runs below reuse it.
build_start=$(date +%s)
cargo fuzz build
echo "fuzz build: $(( $(date +%s) - build_start )) s"

for target in $(cargo fuzz list); do
  work="fuzz/target/corpus/$target"
  mkdir -p "$work" "fuzz/corpus/$target"
  echo "== fuzz $target (${SECONDS_EACH}s)"
  # -rss_limit_mb: a config or header flood that balloons memory is a finding too.
  # A fixed seed: every run mutates the committed corpus the same way, so a run that passed
  # here passes in CI too (up to how far the time lets it get). FRONTDOOR_FUZZ_SEED=0 asks
  # libFuzzer for a random seed, for longer exploratory runs.
  cargo fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
    -seed="${FRONTDOOR_FUZZ_SEED:-20261130}" \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 \
    | grep -v '^#[0-9]' || { echo "fuzz target $target failed; see fuzz/artifacts/$target"; exit 1; }
done
