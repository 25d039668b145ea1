#!/usr/bin/env bash
# Profiles frontdoor's warm-session proxy path with perf: nginx serves a small file, the
# release frontdoor proxies it with a signed-in session cookie, wrk loads it, and
# `perf record` samples frontdoor meanwhile. Prints the hottest symbols (self time) and
# writes the full report to $OUT (default /tmp/frontdoor-profile).
#
#   bench/profile.sh [SECONDS]        (default 10; needs a release build: bench/run.sh builds one)
#
# Needs nginx, wrk, curl, perf (Debian: nginx wrk curl linux-perf). For the flat view of the
# proxy path, compare with the same run against examples/bare_proxy (PROFILE_TARGET=bare).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SECONDS_TO_RUN="${1:-10}"
OUT="${OUT:-/tmp/frontdoor-profile}"
TARGET="${PROFILE_TARGET:-frontdoor}"
BASE="${BENCH_PORT_BASE:-19000}"
P_UP=$((BASE + 1)); P_FD=$((BASE + 10)); P_ADMIN=$((BASE + 11)); P_BARE=$((BASE + 4))
rm -rf "$OUT"; mkdir -p "$OUT/www" "$OUT/logs" "$OUT/nginx-tmp"
head -c 512 /dev/zero | tr '\0' 'x' > "$OUT/www/bench.txt"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$OUT/nginx.pid" ] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
cat > "$OUT/nginx.conf" <<CONF
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/logs/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $OUT/nginx-tmp; proxy_temp_path $OUT/nginx-tmp;
  fastcgi_temp_path $OUT/nginx-tmp; uwsgi_temp_path $OUT/nginx-tmp; scgi_temp_path $OUT/nginx-tmp;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$P_UP; root $OUT/www; default_type text/plain; }
}
CONF
nginx -p "$OUT" -e "$OUT/logs/nginx.err" -c "$OUT/nginx.conf"
cat > "$OUT/frontdoor.yaml" <<CONF
listen: 127.0.0.1:$P_FD
admin_listen: 127.0.0.1:$P_ADMIN
public_url: http://127.0.0.1:$P_FD
data_dir: $OUT/data
routes:
  - { host: "*", path_prefix: /, upstream: "http://127.0.0.1:$P_UP", policy: authenticated }
CONF
BIN=target/release/frontdoor
if [ "$TARGET" = bare ]; then
  target/release/examples/bare_proxy "127.0.0.1:$P_BARE" "127.0.0.1:$P_UP" > "$OUT/logs/bare.log" 2>&1 &
  PID=$!; PIDS+=("$PID"); URL="http://127.0.0.1:$P_BARE/bench.txt"; HEADER="X-Bench: 1"
  sleep 1
else
  "$BIN" --config "$OUT/frontdoor.yaml" serve > "$OUT/logs/frontdoor.log" 2>&1 &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P_ADMIN/healthz" >/dev/null && break; sleep 0.1; done
  printf 'profile-password\n' | "$BIN" --config "$OUT/frontdoor.yaml" users add --email p@example.com --name P --password-stdin >/dev/null
  JAR="$OUT/jar.txt"
  CSRF="$(curl -s -c "$JAR" -b "$JAR" "http://127.0.0.1:$P_FD/_frontdoor/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -n1 | cut -d'"' -f4)"
  curl -s -o /dev/null -c "$JAR" -b "$JAR" "http://127.0.0.1:$P_FD/_frontdoor/login" --data-urlencode email=p@example.com \
    --data-urlencode password=profile-password --data-urlencode "csrf_token=$CSRF" --data-urlencode return_to=/
  HEADER="Cookie: frontdoor_session=$(awk '$6 == "frontdoor_session" {print $7}' "$JAR")"
  URL="http://127.0.0.1:$P_FD/bench.txt"
fi
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$HEADER" "$URL")" = 200 ] || { echo "setup failed" >&2; exit 1; }
wrk -t2 -c64 -d"$((SECONDS_TO_RUN + 2))s" -H "$HEADER" "$URL" > "$OUT/wrk.txt" &
WRK=$!
sleep 1
perf record -F 999 -g -p "$PID" -o "$OUT/perf.data" -- sleep "$SECONDS_TO_RUN" 2> "$OUT/logs/perf.err"
wait "$WRK"
grep -E "Requests/sec|Latency" "$OUT/wrk.txt"
perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio 2>/dev/null > "$OUT/report.txt"
perf report -i "$OUT/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -8
grep -E "^ +[0-9]+\.[0-9]+%" "$OUT/report.txt" | head -40
