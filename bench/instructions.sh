#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: the bare Pingora proxy
# (examples/bare_proxy.rs) next to frontdoor with a warm session cookie (also on a route that
# sends a signed identity assertion), a read-write Api-Token, a Bearer JWT and on a public route, all in front of the same nginx upstream. Unlike req/s,
# instruction counts do not depend on what else the machine is doing, so this compares the
# auth path with its baseline on a busy machine too (it does not see cache misses, lock waits
# or syscalls' cost in the kernel).
#
#   INSTR_KEEP=1 bench/instructions.sh [REQUESTS]   (keeps the work dir and each row's
#                                                    callgrind dump for callgrind_annotate)
#   INSTR_CONFIG='log: {access: false}' bench/instructions.sh   (extra top-level YAML for
#                                        frontdoor's config: e.g. the access log off)
#   bench/instructions.sh [REQUESTS]     (default 3000 per row; needs a release build:
#                                         cargo build --release --bin frontdoor --example bare_proxy)
#   INSTR_MODE=cpu bench/instructions.sh [REQUESTS]   (no valgrind: each server runs natively
#                                         and the row is its CPU time per request, user + kernel,
#                                         from /proc/PID/stat, with nginx as a plain reverse
#                                         proxy as the first row; default 40000 per row over
#                                         64 connections, INSTR_CONNECTIONS to change)
#
# Why both: callgrind counts a `rep movsb` copy one instruction per byte and sees nothing of
# the kernel, so a large future moved once per request looks costly there and cheap in time,
# and a syscall looks free; CPU time sees both as they are, but moves with what else runs.
#
# Needs nginx, ab (apache2-utils), curl, jq and valgrind. Each row: the server runs under
# callgrind, gets 300 warm-up requests, its counters are zeroed, it gets REQUESTS requests over
# 4 keep-alive connections, and the counters are dumped; the figure is the instructions of the
# whole process (every thread) divided by REQUESTS.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODE="${INSTR_MODE:-instructions}"
# Worker threads of the bare proxy and of frontdoor (nginx runs one worker).
THREADS="${INSTR_THREADS:-2}"
case "$MODE" in
  instructions) N="${1:-3000}" ;;
  cpu) N="${1:-40000}"; CPU_CONNECTIONS="${INSTR_CONNECTIONS:-64}" ;;
  *) echo "INSTR_MODE is instructions or cpu, not $MODE" >&2; exit 2 ;;
esac
WORK="$(mktemp -d /tmp/frontdoor-instr.XXXXXX)"
BASE="${INSTR_PORT_BASE:-19700}"
P_UP=$((BASE + 1)); P_BARE=$((BASE + 2)); P_FD=$((BASE + 3)); P_ADMIN=$((BASE + 4))
P_NGINX=$((BASE + 5))
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/frontdoor"
BARE="$TARGET/release/examples/bare_proxy"
for b in "$BIN" "$BARE"; do [ -x "$b" ] || { echo "missing $b: build it first" >&2; exit 1; }; done
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ "${INSTR_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/www" "$WORK/logs" "$WORK/tmp"
chmod 755 "$WORK"
head -c 512 /dev/zero | tr '\0' 'x' > "$WORK/www/bench.txt"
mkdir -p "$WORK/www/public" && cp "$WORK/www/bench.txt" "$WORK/www/public/bench.txt"
mkdir -p "$WORK/www/signed" && cp "$WORK/www/bench.txt" "$WORK/www/signed/bench.txt"
chmod -R a+rX "$WORK/www"
# One nginx configuration: $1 names its pid and error log, $2 goes before `events` (process
# settings), $3 inside `http` after the settings every instance shares.
nginx_conf() {
  cat <<CONF
worker_processes 1;
$2
pid $WORK/$1.pid;
error_log $WORK/logs/$1.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp;
  fastcgi_temp_path $WORK/tmp; uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  keepalive_requests 1000000;
$3
}
CONF
}
# The upstream, serving the file.
nginx_conf nginx "" "  client_header_buffer_size 16k;
  server { listen 127.0.0.1:$P_UP; root $WORK/www; default_type text/plain; }" > "$WORK/nginx.conf"
# nginx as a plain reverse proxy (one worker, upstream keep-alive), the CPU mode's baseline;
# in the foreground, one process, so that its CPU time is the pid's.
nginx_conf proxy "daemon off;
master_process off;" "  upstream up { server 127.0.0.1:$P_UP; keepalive 64; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }" > "$WORK/proxy.conf"
nginx -p "$WORK" -e "$WORK/logs/nginx.err" -c "$WORK/nginx.conf"

cat > "$WORK/frontdoor.yaml" <<CONF
listen: 127.0.0.1:$P_FD
admin_listen: 127.0.0.1:$P_ADMIN
public_url: http://127.0.0.1:$P_FD
data_dir: $WORK/data
threads: $THREADS
regulation: { token_rate: { per_second: 0 }, login_rate: { per_second: 0 } }
${INSTR_CONFIG:-}
routes:
  - { host: "*", path_prefix: /, upstream: "http://127.0.0.1:$P_UP", policy: authenticated }
  - { host: "*", path_prefix: /public, upstream: "http://127.0.0.1:$P_UP", policy: public }
  - { host: "*", path_prefix: /signed, upstream: "http://127.0.0.1:$P_UP", assertion: true }
CONF

wait_http() { for _ in $(seq 1 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.2; done; echo "no answer from $1" >&2; exit 1; }

# Credentials are made with frontdoor running natively (key generation and Argon2 under
# callgrind would take minutes); sessions and tokens live in the store, so they survive the
# restart under callgrind.
"$BIN" --config "$WORK/frontdoor.yaml" serve > "$WORK/logs/native.log" 2>&1 &
FD=$!
wait_http "http://127.0.0.1:$P_ADMIN/healthz"
printf 'bench-password\n' | "$BIN" --config "$WORK/frontdoor.yaml" users add --email b@example.com \
  --name Bench --groups wiki --password-stdin > /dev/null
JAR="$WORK/jar.txt"
CSRF="$(curl -s -c "$JAR" -b "$JAR" "http://127.0.0.1:$P_FD/_frontdoor/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -n1 | cut -d'"' -f4)"
curl -s -o /dev/null -c "$JAR" -b "$JAR" "http://127.0.0.1:$P_FD/_frontdoor/login" --data-urlencode email=b@example.com \
  --data-urlencode password=bench-password --data-urlencode "csrf_token=$CSRF" --data-urlencode return_to=/
COOKIE="frontdoor_session=$(awk '$6 == "frontdoor_session" {print $7}' "$JAR")"
API_TOKEN="$("$BIN" --config "$WORK/frontdoor.yaml" tokens create --user b@example.com --json | jq -r .token)"
BEARER="$(curl -s "http://127.0.0.1:$P_FD/api/v1/login-check" -H 'Content-Type: application/json' \
  -d '{"email":"b@example.com","password":"bench-password"}' | jq -r .token)"
kill "$FD"; wait "$FD" 2>/dev/null || true
# The same session among a corporate domain's other cookies (bench/run.sh's fd_cookie_big).
BIG_COOKIE="$("$ROOT/bench/foreign-cookies.sh")${COOKIE}; _ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000"

# Runs one server under callgrind and prints a line "label<TAB>instructions per request" for
# each row of ROWS ("label|path|header", header may be empty). $1: port; the rest: the command.
# The CPU time (user and kernel, in clock ticks) a process has used, all its threads.
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
TICK_HZ="$(getconf CLK_TCK)"

measure() {
  local port="$1"; shift
  if [ "$MODE" = cpu ]; then
    "$@" > "$WORK/logs/native-measure.log" 2>&1 &
  else
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" --dump-instr=no "$@" \
      > "$WORK/logs/callgrind.log" 2>&1 &
  fi
  local pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$port/public/bench.txt"
  local row label path header out dump ir
  for row in "${ROWS[@]}"; do
    IFS='|' read -r label path header <<< "$row"
    local h=(); [ -n "$header" ] && h=(-H "$header")
    local url="http://127.0.0.1:$port$path"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "${h[@]}" "$url")" = 200 ] \
      || { echo "$label: the setup request was not answered 200" >&2; exit 1; }
    ab -q -k -c 4 -n 300 "${h[@]}" "$url" > /dev/null
    if [ "$MODE" = cpu ]; then
      local u0 k0 u1 k1
      read -r u0 k0 < <(ticks "$pid")
      out="$(ab -q -k -c "$CPU_CONNECTIONS" -n "$N" "${h[@]}" "$url")"
      read -r u1 k1 < <(ticks "$pid")
      if echo "$out" | grep -q "^Non-2xx responses" || ! echo "$out" | grep -qE "^Failed requests: +0"; then
        echo "$label: some requests failed" >&2; echo "$out" >&2; exit 1
      fi
      # Nanoseconds of CPU per request: in all, in user space, in the kernel.
      local ns=$((1000000000 / TICK_HZ))
      printf '%s\t%s\t%s\t%s\n' "$label" "$(( (u1 - u0 + k1 - k0) * ns / N ))" \
        "$(( (u1 - u0) * ns / N ))" "$(( (k1 - k0) * ns / N ))"
      continue
    fi
    callgrind_control -z "$pid" > /dev/null 2>&1
    out="$(ab -q -k -c 4 -n "$N" "${h[@]}" "$url")"
    if echo "$out" | grep -q "^Non-2xx responses" || ! echo "$out" | grep -qE "^Failed requests: +0"; then
      echo "$label: some requests failed" >&2; echo "$out" >&2; exit 1
    fi
    callgrind_control -d "$pid" > /dev/null 2>&1
    # The newest dump holds the counts since the zeroing.
    dump="$(ls -t "$WORK"/cg."$pid".* | head -n1)"
    ir="$(grep -E '^(summary|totals):' "$dump" | head -n1 | awk '{print $2}')"
    printf '%s\t%s\n' "$label" "$((ir / N))"
    if [ "${INSTR_KEEP:-0}" = 1 ]; then
      mv "$dump" "$WORK/callgrind.$(echo "$label" | tr -c 'a-zA-Z0-9\n' '_')"
    fi
    rm -f "$WORK"/cg."$pid".*
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

RESULTS="$WORK/results.tsv"
if [ "$MODE" = cpu ]; then
  UNIT="CPU ns/request"
  echo "CPU time per request, user + kernel ($N requests per row, $CPU_CONNECTIONS keep-alive connections, ab)"
  ROWS=("nginx reverse proxy|/public/bench.txt|")
  measure "$P_NGINX" nginx -p "$WORK" -e "$WORK/logs/proxy.err" -c "$WORK/proxy.conf" | tee -a "$RESULTS"
else
  UNIT="instructions/request"
  echo "instructions per request ($N requests per row, 4 keep-alive connections, ab)"
fi
ROWS=("bare Pingora proxy|/public/bench.txt|")
measure "$P_BARE" "$BARE" "127.0.0.1:$P_BARE" "127.0.0.1:$P_UP" "$THREADS" | tee -a "$RESULTS"
ROWS=(
  "frontdoor, public route|/public/bench.txt|"
  "frontdoor, session cookie (warm)|/bench.txt|Cookie: $COOKIE"
  "frontdoor, session cookie (warm), signed assertion|/signed/bench.txt|Cookie: $COOKIE"
  "frontdoor, session cookie (warm) among 3.5 KB of other cookies|/bench.txt|Cookie: $BIG_COOKIE"
  "frontdoor, read-write Api-Token|/bench.txt|Api-Token: $API_TOKEN"
  "frontdoor, Bearer JWT|/bench.txt|Authorization: Bearer $BEARER"
)
measure "$P_FD" "$BIN" --config "$WORK/frontdoor.yaml" serve | tee -a "$RESULTS"
BARE_IR="$(grep -m1 '^bare Pingora proxy' "$RESULTS" | cut -f2)"
echo
if [ "$MODE" = cpu ]; then
  echo "| scenario | $UNIT | user | kernel | ÷ bare Pingora |"
  echo "|---|---:|---:|---:|---:|"
else
  echo "| scenario | $UNIT | ÷ bare Pingora |"
  echo "|---|---:|---:|"
fi
while IFS=$'\t' read -r label ir user kernel; do
  ratio="$(awk -v a="$ir" -v b="$BARE_IR" 'BEGIN { printf "%.2f", a / b }')"
  if [ "$MODE" = cpu ]; then
    printf '| %s | %s | %s | %s | %s |\n' "$label" "$ir" "$user" "$kernel" "$ratio"
  else
    printf '| %s | %s | %s |\n' "$label" "$ir" "$ratio"
  fi
done < "$RESULTS"
