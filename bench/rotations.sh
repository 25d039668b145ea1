#!/usr/bin/env bash
# What one refresh-token rotation costs the store under load: a release frontdoor on a fresh
# data directory, CLIENTS wrk connections refreshing their own token chains for SECONDS, ROUNDS
# times back to back on the same store, and per round: refresh/s, rotations per commit, ms per
# commit (from frontdoor's own metrics), the CPU time of sqlx's SQLite threads per rotation
# (the writer's work; 0 on PostgreSQL, whose server does it), the bytes frontdoor's process
# wrote to storage per rotation (`/proc/PID/io` write_bytes: WAL frames and checkpoints on
# SQLite), and the machine's idle share (a rotation bound by waiting leaves the CPU idle).
#
#   cargo build --release --bin frontdoor && bench/rotations.sh [SECONDS] [ROUNDS]
#
# SECONDS per round (default 5), ROUNDS (default 3). ALGORITHM the signing key's (default
# ES256, where the store's share is largest), SCOPE of the refresh tokens (default
# `offline_access`: one signature per refresh), CLIENTS (default 64), PG_URL a PostgreSQL
# server to store in instead of SQLite (its database frontdoor_rotations is dropped and
# created), BIN the binary (default the release build), BENCH_PORT_BASE (default 19500).
# Needs wrk, node, curl and jq. Compare two builds by running each in turn, more than once:
# the figures move with what else runs on the machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_ROUND="${1:-5}"
ROUNDS="${2:-3}"
ALGORITHM="${ALGORITHM:-ES256}"
SCOPE="${SCOPE:-offline_access}"
CLIENTS="${CLIENTS:-64}"
PG_URL="${PG_URL:-}"
BIN="${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/frontdoor}"
BASE="${BENCH_PORT_BASE:-19500}"
EMAIL=rotations@example.com
PASSWORD=rotations-password-1
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --release --bin frontdoor)" >&2; exit 2; }
for tool in wrk node curl jq; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done
WORK="$(mktemp -d /tmp/frontdoor-rotations.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
DIR="$WORK" DATABASE=frontdoor_rotations
# shellcheck source=bench/lib/provider-frontdoor.sh
. "$ROOT/bench/lib/provider-frontdoor.sh"
$FD serve > "$WORK/frontdoor.log" 2>&1 &
PID=$!
wait_up
printf '%s\n' "$PASSWORD" | $FD users add --email "$EMAIL" --name Rotations --password-stdin > /dev/null 2>> "$WORK/cli.log"
read -r WEB_ID WEB_SECRET < <($FD apps create --name rotations --redirect-uri "$REDIRECT_URI" --first-party --json 2>> "$WORK/cli.log" \
  | jq -r '"\(.client_id) \(.client_secret)"')
AUTH="Basic $(printf '%s:%s' "$WEB_ID" "$WEB_SECRET" | base64 -w0)"

metric() { curl -sf "http://127.0.0.1:$P_ADMIN/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
writer_ticks() { # clock ticks of sqlx's SQLite threads
  local t=0 d
  for d in /proc/"$PID"/task/*; do
    grep -q '^sqlx-sqlite' "$d/comm" 2>/dev/null && t=$((t + $(awk '{print $14 + $15}' "$d/stat")))
  done
  echo "$t"
}
written() { awk '/^write_bytes/ {print $2}' /proc/"$PID"/io; }
idle_and_total() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
TICKS_PER_SECOND="$(getconf CLK_TCK)"

STORE_NAME=SQLite
[ -n "$PG_URL" ] && STORE_NAME=PostgreSQL
echo "$($BIN --version 2>/dev/null | head -n1), $ALGORITHM, scope \"$SCOPE\", $STORE_NAME, $CLIENTS clients, ${SECONDS_PER_ROUND} s per round"
printf '%-6s %10s %10s %10s %14s %14s %6s\n' round refresh/s rot/commit ms/commit "writer µs/rot" "bytes/rot" idle
for round in $(seq 1 "$ROUNDS"); do
  # Each round signs in its clients afresh: one token chain per connection.
  node bench/tools/oauth_load.mjs tokens --issuer "$FD_URL" --client-id "$WEB_ID" --client-secret="$WEB_SECRET" \
    --redirect-uri "$REDIRECT_URI" --scope "$SCOPE" --email "$EMAIL" --password "$PASSWORD" \
    --count "$((CLIENTS + 8))" > "$WORK/tokens.txt"
  r1="$(metric frontdoor_refresh_rotations_per_commit_sum)"; c1="$(metric frontdoor_refresh_rotations_per_commit_count)"
  d1="$(metric frontdoor_refresh_rotation_commit_duration_seconds_sum)"
  w1="$(writer_ticks)"; b1="$(written)"; read -r i1 t1 < <(idle_and_total)
  env BENCH_THREADS=2 BENCH_REFRESH_TOKENS="$WORK/tokens.txt" BENCH_HEADERS="Authorization: $AUTH
Content-Type: application/x-www-form-urlencoded" \
    wrk -t2 -c"$CLIENTS" -d"${SECONDS_PER_ROUND}s" -s bench/wrk/bench.lua "$FD_URL/oauth/token" > "$WORK/wrk.txt"
  r2="$(metric frontdoor_refresh_rotations_per_commit_sum)"; c2="$(metric frontdoor_refresh_rotations_per_commit_count)"
  d2="$(metric frontdoor_refresh_rotation_commit_duration_seconds_sum)"
  w2="$(writer_ticks)"; b2="$(written)"; read -r i2 t2 < <(idle_and_total)
  if grep -q 'Non-2xx' "$WORK/wrk.txt"; then
    echo "round $round: non-2xx answers: $(grep 'Non-2xx' "$WORK/wrk.txt")" >&2; exit 1
  fi
  python3 - "$round" "$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")" \
    "${r1:-0}" "$r2" "${c1:-0}" "$c2" "${d1:-0}" "$d2" "$w1" "$w2" "$b1" "$b2" "$i1" "$i2" "$t1" "$t2" "$TICKS_PER_SECOND" <<'PY'
import sys
a = sys.argv[1:]
rnd, rps = a[0], float(a[1])
r1, r2, c1, c2, d1, d2 = map(float, a[2:8])
w1, w2, b1, b2, i1, i2, t1, t2, hz = map(int, a[8:17])
rotations, commits = r2 - r1, c2 - c1
if rotations <= 0 or commits <= 0:
    sys.exit(f"round {rnd}: no rotation was committed")
print(f"{rnd:<6} {rps:>10,.0f} {rotations / commits:>10.1f} {(d2 - d1) * 1000 / commits:>10.2f} "
      f"{(w2 - w1) / hz * 1e6 / rotations:>14.1f} {(b2 - b1) / rotations:>14,.0f} "
      f"{(i2 - i1) * 100 / max(t2 - t1, 1):>5.0f}%")
PY
done
