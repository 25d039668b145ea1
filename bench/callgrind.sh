#!/usr/bin/env bash
# Counts the CPU instructions frontdoor spends per provider operation, under valgrind's
# callgrind: client_credentials grants, refresh grants (with `openid`: an access and an ID
# token; and with `offline_access` alone: one token) and introspections. Instruction counts
# do not depend on what else runs on the machine, so they compare builds where wall-clock
# throughput cannot (a busy or shared machine). Prints instructions per operation and writes
# each profile and its `callgrind_annotate` report to $OUT (default /tmp/frontdoor-callgrind).
#
#   cargo build --profile profiling --bin frontdoor && bench/callgrind.sh [N]
#
# N operations per kind (default 2000), CONCURRENCY clients at once (default 8), ALGORITHM the
# signing key's (`keys.algorithm`: RS256, the default, or ES256), PG_URL a PostgreSQL server to
# store in instead of SQLite (its database frontdoor_callgrind is dropped and created; its
# server's own processes are not counted). BIN overrides
# the binary (default: the profiling build under $CARGO_TARGET_DIR or target/). Needs valgrind,
# ab (Debian: apache2-utils), node, curl, jq. Counts include every thread of frontdoor (SQLite's
# worker threads too), not the load generator's; startup and sign-ins are not counted.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
N="${1:-2000}"
CONC="${CONCURRENCY:-8}"
ALGORITHM="${ALGORITHM:-RS256}"
PG_URL="${PG_URL:-}"
OUT="${OUT:-/tmp/frontdoor-callgrind}"
BIN="${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/profiling/frontdoor}"
BASE="${BENCH_PORT_BASE:-19400}"
EMAIL=cg@example.com
PASSWORD=callgrind-password-1
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --profile profiling --bin frontdoor)" >&2; exit 2; }
rm -rf "$OUT"; mkdir -p "$OUT/logs"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT
DIR="$OUT" DATABASE=frontdoor_callgrind
# shellcheck source=bench/lib/provider-frontdoor.sh
. "$ROOT/bench/lib/provider-frontdoor.sh"

# First start without valgrind: generates the keys and creates the database.
$FD serve > "$OUT/logs/setup.log" 2>&1 &
PID=$!
wait_up
printf '%s\n' "$PASSWORD" | $FD users add --email "$EMAIL" --name CG --password-stdin > /dev/null
read -r CC_ID CC_SECRET < <($FD apps create --name cg-cc --grant client_credentials --json | jq -r '"\(.client_id) \(.client_secret)"')
read -r WEB_ID WEB_SECRET < <($FD apps create --name cg-web --redirect-uri "$REDIRECT_URI" --first-party --json | jq -r '"\(.client_id) \(.client_secret)"')
kill "$PID"; wait "$PID" 2>/dev/null || true

valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" $FD serve > "$OUT/logs/frontdoor.log" 2>&1 &
PID=$!
wait_up
FORM=application/x-www-form-urlencoded
printf 'grant_type=client_credentials' > "$OUT/cc.body"
TOKEN="$(curl -sf -u "$CC_ID:$CC_SECRET" "$FD_URL/oauth/token" -d grant_type=client_credentials | jq -r .access_token)"
printf 'token=%s' "$TOKEN" > "$OUT/introspect.body"
[ "$(curl -sf -u "$CC_ID:$CC_SECRET" "$FD_URL/oauth/introspect" --data-binary "@$OUT/introspect.body" | jq -r .active)" = true ] \
  || { echo "introspection of a fresh token is not active" >&2; exit 1; }

# Instructions of the dump callgrind_control just wrote (the newest file), divided by N.
per_op() { # NAME
  local file; file="$(ls -t "$OUT"/callgrind.out."$PID".* | head -n1)"
  mv "$file" "$OUT/$1.callgrind"
  callgrind_annotate --threshold=99 "$OUT/$1.callgrind" > "$OUT/$1.txt" 2>/dev/null || true
  local total; total="$(awk '/^summary:/ {print $2}' "$OUT/$1.callgrind")"
  printf '%-20s %12s instructions/op  (%s in all, %s operations)\n' "$1" "$((total / N))" "$total" "$N"
}
ab_run() { # NAME BODY
  callgrind_control -z "$PID" > /dev/null 2>&1
  ab -q -n "$N" -c "$CONC" -k -p "$2" -T "$FORM" -A "$CC_ID:$CC_SECRET" "$FD_URL/oauth/${3}" > "$OUT/logs/$1.ab" 2>&1
  callgrind_control -d "$PID" > /dev/null 2>&1
  grep -q '^Non-2xx responses' "$OUT/logs/$1.ab" && { echo "$1: non-2xx answers (see $OUT/logs/$1.ab)" >&2; exit 1; }
  per_op "$1"
}
ab_run client_credentials "$OUT/cc.body" token
ab_run introspection "$OUT/introspect.body" introspect
refresh_run() { # NAME SCOPE
  node bench/tools/oauth_load.mjs refresh --issuer "$FD_URL" --client-id "$WEB_ID" --client-secret="$WEB_SECRET" \
    --redirect-uri "$REDIRECT_URI" --scope "$2" --email "$EMAIL" --password "$PASSWORD" \
    --concurrency "$CONC" --count "$N" \
    --before "callgrind_control -z $PID > /dev/null 2>&1" --after "callgrind_control -d $PID > /dev/null 2>&1" > "$OUT/logs/$1.json" 2> "$OUT/logs/$1.err"
  [ "$(jq -r .completed "$OUT/logs/$1.json")" = "$N" ] || { echo "$1: $(cat "$OUT/logs/$1.json")" >&2; exit 1; }
  per_op "$1"
}
refresh_run refresh "openid offline_access"
refresh_run refresh_offline offline_access
