#!/usr/bin/env bash
# frontdoor's benchmark, in one command: builds the release binary, starts everything on
# 127.0.0.1, measures side by side, and writes docs/bench/results.md, results.json,
# proxy.svg and provider.svg, and the summary block of docs/benchmarks.md.
#
#   bench/run.sh [--duration SECONDS] [--smoke] [--skip-build] [--out DIR]
#                [--mem-counts "100000 1000000"]
#
# What runs (all on 127.0.0.1, ports from BENCH_PORT_BASE, default 18000):
#   nginx serving a small static file (the upstream, :+1); nginx as a plain reverse proxy (:+2),
#   nginx with auth_request to frontdoor's /_frontdoor/auth (:+3) and nginx with auth_request
#   to a do-nothing 204 endpoint of the upstream (:+5), all three in one second nginx;
#   examples/bare_proxy (:+4); frontdoor (:+10, admin :+11); a frontdoor with an ES256
#   signing key for the provider rows (:+12, admin :+13); a frontdoor for the memory figures
#   (:+20, admin :+21); oidc-provider (bench/oidc, :+30) and one with an ES256 key (:+31);
#   oauth2-proxy (bench/oauth2-proxy builds it) signed in through frontdoor's own provider, as a
#   reverse proxy (:+40) and behind nginx auth_request (oauth2-proxy :+41, nginx :+42); Caddy
#   with forward_auth to frontdoor (:+43).
#
# Options (and their environment variables):
#   --duration S   seconds per measurement, BENCH_DURATION (default 10). While developing use 1-2.
#   --smoke        short run: duration 2 unless given, memory counts "10000 100000" unless given,
#                  and results.md says that these are smoke-run numbers. BENCH_SMOKE=1.
#   --skip-build   use the binaries already in target/release. BENCH_SKIP_BUILD=1.
#   --out DIR      where the results go, BENCH_OUT (default docs/bench); docs/benchmarks.md is updated
#                  only when DIR is docs/bench.
#   --mem-counts   session counts for the memory rows, BENCH_MEM_COUNTS (default
#                  "100000 1000000"; the 0 row is always measured).
#   --proxy-only   only the proxy path and its paired rounds (no cold path, provider or memory
#                  rows): the proxy ratios in a few minutes. BENCH_PROXY_ONLY=1.
#   --provider-only  only the provider path: raw signatures, the grant rows and their paired
#                  rounds on SQLite and PostgreSQL (no nginx, proxy, cold path or memory rows).
#                  BENCH_PROVIDER_ONLY=1. PostgreSQL: a durable server (fsync and
#                  synchronous_commit on) the bench starts in its scratch directory, or the one at
#                  BENCH_POSTGRES_URL (its databases frontdoor_bench_*); BENCH_POSTGRES=0 skips it.
#   --connections-only  only the connections rows (bench/connections.sh: 10,000 idle keep-alive
#                  connections and 1,000 WebSockets held by one frontdoor, its RSS per
#                  connection, and wrk with them held vs without, in paired rounds); they also run
#                  in the full and --proxy-only runs. BENCH_CONNECTIONS_ONLY=1. Counts:
#                  BENCH_CONN_IDLE (10000), BENCH_CONN_WS (1000).
# BENCH_PROXY_THREADS: worker threads of frontdoor's proxy and of the bare Pingora proxy
#                  (default 1).
# BENCH_NGINX_WORKERS: worker processes of the nginx proxies (default 1, as the proxies'
#                  threads). Every proxy gets one worker, as in issue 17's own measurement
#                  (nginx with 1 worker), and the 2-core machine's other core goes to wrk and the
#                  upstream: with a worker per core the proxies, wrk and the upstream preempt
#                  each other, and frontdoor's rounds swung between fast and slow phases
#                  (docs/benchmarks.md, "December 7, session 31" and "session 32"). Set both to
#                  $(nproc) for the earlier setup.
# BENCH_PROVIDER_THREADS: worker threads of the frontdoors that serve the provider rows (default:
#                  one per CPU: their signatures use every core). When it differs from
#                  BENCH_PROXY_THREADS, the main frontdoor restarts on its data with it before
#                  the provider rows.
# BENCH_UPSTREAM_WORKERS, BENCH_UPSTREAM_SENDFILE: the upstream nginx's worker processes (default
#                  1) and `sendfile` (default off, nginx's own default). Two workers with sendfile
#                  on cost the Pingora rows ~40 % and nginx's rows little (docs/benchmarks.md,
#                  "December 7"): set them to see it.
# More knobs: BENCH_CONNECTIONS (64), BENCH_WRK_THREADS (2), BENCH_WARMUP (1 s per scenario),
# BENCH_LOGIN_CONCURRENCY (8), BENCH_PAIR_ROUNDS (5), BENCH_COLD_LATENCY_SESSIONS
# (2000), BENCH_WORK (scratch directory; default a new /tmp/frontdoor-bench.*, removed at the
# end unless BENCH_KEEP=1).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-}"
SMOKE="${BENCH_SMOKE:-0}"
SKIP_BUILD="${BENCH_SKIP_BUILD:-0}"
OUT="${BENCH_OUT:-docs/bench}"
MEM_COUNTS="${BENCH_MEM_COUNTS:-}"
PROXY_ONLY="${BENCH_PROXY_ONLY:-0}"
PROXY_THREADS="${BENCH_PROXY_THREADS:-1}"
NGINX_WORKERS="${BENCH_NGINX_WORKERS:-1}"
PROVIDER_THREADS="${BENCH_PROVIDER_THREADS:-$(nproc)}"
UPSTREAM_WORKERS="${BENCH_UPSTREAM_WORKERS:-1}"
UPSTREAM_SENDFILE="${BENCH_UPSTREAM_SENDFILE:-off}"
case "$UPSTREAM_SENDFILE" in on|off) ;; *) echo "BENCH_UPSTREAM_SENDFILE is on or off, not $UPSTREAM_SENDFILE" >&2; exit 2 ;; esac
PROVIDER_ONLY="${BENCH_PROVIDER_ONLY:-0}"
CONNECTIONS_ONLY="${BENCH_CONNECTIONS_ONLY:-0}"
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --mem-counts) MEM_COUNTS="$2"; shift 2 ;;
    --proxy-only) PROXY_ONLY=1; shift ;;
    --provider-only) PROVIDER_ONLY=1; shift ;;
    --connections-only) CONNECTIONS_ONLY=1; PROXY_ONLY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  DURATION="${DURATION:-2}"
  MEM_COUNTS="${MEM_COUNTS:-10000 100000}"
fi
DURATION="${DURATION:-10}"
MEM_COUNTS="${MEM_COUNTS:-100000 1000000}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
WRK_THREADS="${BENCH_WRK_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-1}"
LOGIN_CONCURRENCY="${BENCH_LOGIN_CONCURRENCY:-8}"
# Five, not three: with rounds that differ by 10-25 % on a shared VM, the median of three moved a
# ratio across its target with one slow round (docs/benchmarks.md, "December 7, later").
PAIR_ROUNDS="${BENCH_PAIR_ROUNDS:-5}"
COLD_LATENCY_SESSIONS="${BENCH_COLD_LATENCY_SESSIONS:-2000}"
PORT_BASE="${BENCH_PORT_BASE:-18000}"
case "$DURATION" in ''|*[!0-9]*) echo "--duration takes whole seconds" >&2; exit 2 ;; esac

P_UPSTREAM=$((PORT_BASE + 1))
P_NGINX_PROXY=$((PORT_BASE + 2))
P_NGINX_AUTH=$((PORT_BASE + 3))
P_BARE=$((PORT_BASE + 4))
P_NGINX_AUTH204=$((PORT_BASE + 5))
P_FD=$((PORT_BASE + 10))
P_FD_ADMIN=$((PORT_BASE + 11))
P_FD_ES=$((PORT_BASE + 12))
P_FD_ES_ADMIN=$((PORT_BASE + 13))
P_MEM=$((PORT_BASE + 20))
P_MEM_ADMIN=$((PORT_BASE + 21))
P_OIDC=$((PORT_BASE + 30))
P_OIDC_ES=$((PORT_BASE + 31))
P_O2P=$((PORT_BASE + 40))
P_O2P_AUTH=$((PORT_BASE + 41))
P_NGINX_O2P=$((PORT_BASE + 42))
P_CADDY_FA=$((PORT_BASE + 43))

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$ROOT/$TARGET_DIR/release/frontdoor"
BARE_BIN="$ROOT/$TARGET_DIR/release/examples/bare_proxy"
SIG_BIN="$ROOT/$TARGET_DIR/release/examples/signatures"
case "$TARGET_DIR" in /*) BIN="$TARGET_DIR/release/frontdoor"; BARE_BIN="$TARGET_DIR/release/examples/bare_proxy"; SIG_BIN="$TARGET_DIR/release/examples/signatures" ;; esac

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
# The items in an order drawn from ROUND (the same order for the same ROUND in every run), one
# per line. Paired rows run in a new order each round: in a fixed order the warm-session row,
# always right after nginx's, came out below rows that do more work in every round.
shuffled() { # ROUND ITEM...
  python3 -c 'import random, sys; a = sys.argv[2:]; random.Random(int(sys.argv[1])).shuffle(a); print("\n".join(a))' "$@"
}

# ---------------------------------------------------------------------------------------------
# Tools
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
}
command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install Rust from https://rustup.rs"
if command -v dpkg >/dev/null 2>&1; then
  want=()
  command -v nginx >/dev/null 2>&1 || want+=(nginx)
  command -v wrk >/dev/null 2>&1 || want+=(wrk)
  command -v gnuplot >/dev/null 2>&1 || want+=(gnuplot-nox)
  command -v sqlite3 >/dev/null 2>&1 || want+=(sqlite3)
  command -v node >/dev/null 2>&1 || want+=(nodejs npm)
  command -v npm >/dev/null 2>&1 || want+=(npm)
  command -v curl >/dev/null 2>&1 || want+=(curl)
  command -v jq >/dev/null 2>&1 || want+=(jq)
  command -v python3 >/dev/null 2>&1 || want+=(python3)
  command -v cmake >/dev/null 2>&1 || want+=(cmake pkg-config)
  command -v caddy >/dev/null 2>&1 || want+=(caddy)
  [ ${#want[@]} -eq 0 ] || apt_install "${want[@]}"
fi
for t in nginx wrk gnuplot sqlite3 node npm curl jq python3 caddy; do
  command -v "$t" >/dev/null 2>&1 || die "$t is missing (Debian: apt-get install it)"
done
NGINX_BIN="$(command -v nginx)"

OIDC_DIR="$ROOT/bench/oidc"
if [ ! -f "$OIDC_DIR/node_modules/.package-lock.json" ] \
  || [ "$OIDC_DIR/package-lock.json" -nt "$OIDC_DIR/node_modules/.package-lock.json" ]; then
  log "npm ci in bench/oidc"
  (cd "$OIDC_DIR" && npm ci --no-audit --no-fund >/dev/null)
fi

# oauth2-proxy, the front door most teams run: built from source once (bench/oauth2-proxy).
if [ "$PROVIDER_ONLY" != 1 ]; then
O2P_BIN="$(bash "$ROOT/bench/oauth2-proxy/setup.sh" >&2 && echo "${O2P_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oauth2-proxy/bin}/oauth2-proxy")" \
  || die "bench/oauth2-proxy/setup.sh could not install oauth2-proxy"
[ -x "$O2P_BIN" ] || die "$O2P_BIN is missing after bench/oauth2-proxy/setup.sh"
fi # PROVIDER_ONLY

if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release --bin frontdoor --example bare_proxy --example signatures"
  cargo build --release --bin frontdoor --example bare_proxy --example signatures
fi
[ -x "$BIN" ] || die "$BIN is missing (run without --skip-build)"
[ -x "$BARE_BIN" ] || die "$BARE_BIN is missing (run without --skip-build)"
[ -x "$SIG_BIN" ] || die "$SIG_BIN is missing (run without --skip-build)"

for p in $P_UPSTREAM $P_NGINX_PROXY $P_NGINX_AUTH $P_BARE $P_NGINX_AUTH204 $P_FD $P_FD_ADMIN \
  $P_FD_ES $P_FD_ES_ADMIN $P_MEM $P_MEM_ADMIN $P_OIDC $P_OIDC_ES $P_O2P $P_O2P_AUTH $P_NGINX_O2P \
  $P_CADDY_FA; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p on 127.0.0.1 is in use; set BENCH_PORT_BASE to another base"
  fi
done

# ---------------------------------------------------------------------------------------------
# Scratch directory and process management
if [ -n "${BENCH_WORK:-}" ]; then WORK="$BENCH_WORK"; mkdir -p "$WORK"; else WORK="$(mktemp -d /tmp/frontdoor-bench.XXXXXX)"; fi
chmod 755 "$WORK"
mkdir -p "$WORK/raw" "$WORK/logs"
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
PIDS=()
NGINX_PIDFILES=()
# Stops the processes PID...: SIGINT, SIGTERM to those still running after 5 s, SIGKILL after
# 10 s, then reaps them. A background job of a shell without job control starts with SIGINT
# ignored, and a server that installs no handler of its own (Node.js, Python) keeps ignoring it.
stop_pids() {
  [ $# -eq 0 ] && return 0
  kill -INT "$@" 2>/dev/null || true
  local left pid tries=0
  while :; do
    left=()
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    tries=$((tries + 1))
    [ $tries -eq 50 ] && { kill -TERM "${left[@]}" 2>/dev/null || true; }
    [ $tries -eq 100 ] && { kill -KILL "${left[@]}" 2>/dev/null || true; }
    [ $tries -gt 100 ] && break
    sleep 0.1
  done
  for pid in "$@"; do
    wait "$pid" 2>/dev/null || true
  done
}
cleanup() {
  local rc=$?
  for pf in "${NGINX_PIDFILES[@]}"; do
    [ -f "$pf" ] && kill -QUIT "$(cat "$pf")" 2>/dev/null || true
  done
  stop_pids "${PIDS[@]}"
  if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "bench: scratch files kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

wait_http() { # URL [seconds]
  local i
  for i in $(seq 1 $(( ${2:-30} * 10 ))); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  die "nothing answers at $1"
}
expect() { # STATUS CURL-ARGS…: run curl, fail unless the status is STATUS
  local want="$1"; shift
  local got
  got="$(curl -s -o "$WORK/last-body" -w '%{http_code}' "$@")"
  [ "$got" = "$want" ] || die "expected $want, got $got from curl $* ($(head -c 300 "$WORK/last-body"))"
}
record() { # JSON object
  printf '%s\n' "$1" >> "$RESULTS"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
metric() { # ADMIN_PORT NAME{LABELS}: the value, 0 when absent
  curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($0, m) == 1 {v=$2} END {print (v == "" ? 0 : v)}'
}

if [ "$PROVIDER_ONLY" != 1 ]; then
# ---------------------------------------------------------------------------------------------
# Upstream and nginx
mkdir -p "$WORK/www/public" "$WORK/www/signed" "$WORK/nginx-tmp"
head -c 512 /dev/zero | tr '\0' 'x' > "$WORK/www/bench.txt"
cp "$WORK/www/bench.txt" "$WORK/www/public/bench.txt"
cp "$WORK/www/bench.txt" "$WORK/www/signed/bench.txt"
chmod -R a+rX "$WORK/www"
NGINX_COMMON="worker_rlimit_nofile 65536;
events { worker_connections 4096; }"
NGINX_HTTP_COMMON="access_log off;
  client_body_temp_path $WORK/nginx-tmp/body;
  proxy_temp_path $WORK/nginx-tmp/proxy;
  fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
  scgi_temp_path $WORK/nginx-tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;"

cat > "$WORK/nginx-upstream.conf" <<EOF
worker_processes $UPSTREAM_WORKERS;
$NGINX_COMMON
pid $WORK/nginx-upstream.pid;
error_log $WORK/logs/nginx-upstream.err warn;
http {
  $NGINX_HTTP_COMMON
  sendfile $UPSTREAM_SENDFILE;
  # Room for the request headers of every row in nginx's first buffer (1 KB by default, then a
  # slower path): the assertion and foreign-cookie rows send 1-4 KB, and the upstream must not
  # charge them for its own buffer size.
  client_header_buffer_size 16k;
  server {
    listen 127.0.0.1:$P_UPSTREAM;
    root $WORK/www;
    default_type text/plain;
    # The do-nothing auth endpoint of the nginx_auth_204 row.
    location = /auth-204 { return 204; }
  }
}
EOF
cat > "$WORK/nginx-front.conf" <<EOF
worker_processes $NGINX_WORKERS;
$NGINX_COMMON
pid $WORK/nginx-front.pid;
error_log $WORK/logs/nginx-front.err warn;
http {
  $NGINX_HTTP_COMMON
  upstream static { server 127.0.0.1:$P_UPSTREAM; keepalive 64; }
  upstream frontdoor { server 127.0.0.1:$P_FD; keepalive 64; }
  # nginx as a plain reverse proxy.
  server {
    listen 127.0.0.1:$P_NGINX_PROXY;
    location / {
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  # nginx with auth_request to frontdoor's forward-auth endpoint (docs/forward-auth.md).
  server {
    listen 127.0.0.1:$P_NGINX_AUTH;
    location = /_frontdoor_auth {
      internal;
      proxy_pass http://frontdoor/_frontdoor/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
      proxy_set_header X-Original-Method \$request_method;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location /_frontdoor/ {
      proxy_pass http://frontdoor;
      proxy_set_header Host \$http_host;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location / {
      auth_request /_frontdoor_auth;
      auth_request_set \$fd_user \$upstream_http_x_auth_request_user;
      auth_request_set \$fd_email \$upstream_http_x_auth_request_email;
      auth_request_set \$fd_groups \$upstream_http_x_auth_request_groups;
      auth_request_set \$fd_roles \$upstream_http_x_auth_request_roles;
      proxy_set_header X-Auth-Request-User \$fd_user;
      proxy_set_header X-Auth-Request-Email \$fd_email;
      proxy_set_header X-Auth-Request-Groups \$fd_groups;
      proxy_set_header X-Auth-Request-Roles \$fd_roles;
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  # nginx with auth_request to a do-nothing endpoint (the upstream answers 204): what
  # auth_request itself costs, the floor of any forward-auth setup.
  server {
    listen 127.0.0.1:$P_NGINX_AUTH204;
    location = /_auth_204 {
      internal;
      proxy_pass http://static/auth-204;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location / {
      auth_request /_auth_204;
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  # nginx with auth_request to oauth2-proxy, as oauth2-proxy's nginx documentation sets it up.
  upstream oauth2proxy { server 127.0.0.1:$P_O2P_AUTH; keepalive 64; }
  server {
    listen 127.0.0.1:$P_NGINX_O2P;
    location /oauth2/ {
      proxy_pass http://oauth2proxy;
      proxy_set_header Host \$host:\$server_port;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Auth-Request-Redirect \$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location = /oauth2/auth {
      internal;
      proxy_pass http://oauth2proxy;
      proxy_set_header Host \$host:\$server_port;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location / {
      auth_request /oauth2/auth;
      auth_request_set \$o2p_user \$upstream_http_x_auth_request_user;
      auth_request_set \$o2p_email \$upstream_http_x_auth_request_email;
      proxy_set_header X-Auth-Request-User \$o2p_user;
      proxy_set_header X-Auth-Request-Email \$o2p_email;
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
log "starting nginx (upstream :$P_UPSTREAM, proxy :$P_NGINX_PROXY, auth_request :$P_NGINX_AUTH, auth_request 204 :$P_NGINX_AUTH204)"
"$NGINX_BIN" -p "$WORK" -e "$WORK/logs/nginx-upstream.err" -c "$WORK/nginx-upstream.conf"
NGINX_PIDFILES+=("$WORK/nginx-upstream.pid")
"$NGINX_BIN" -p "$WORK" -e "$WORK/logs/nginx-front.err" -c "$WORK/nginx-front.conf"
NGINX_PIDFILES+=("$WORK/nginx-front.pid")
wait_http "http://127.0.0.1:$P_UPSTREAM/bench.txt"

log "starting bare_proxy :$P_BARE"
"$BARE_BIN" "127.0.0.1:$P_BARE" "127.0.0.1:$P_UPSTREAM" "$PROXY_THREADS" > "$WORK/logs/bare_proxy.log" 2>&1 &
PIDS+=($!)
fi # PROVIDER_ONLY

# ---------------------------------------------------------------------------------------------
# frontdoor
fd_config() { # PORT ADMIN DATA_DIR EXTRA_SESSION_YAML; FD_THREADS overrides PROXY_THREADS
  cat <<EOF
listen: 127.0.0.1:$1
admin_listen: 127.0.0.1:$2
public_url: http://127.0.0.1:$1
data_dir: $3
organization: frontdoor bench
threads: ${FD_THREADS:-$PROXY_THREADS}
trusted_proxies: [127.0.0.1]
$4
# The load comes from one address (127.0.0.1): no per-address rate limits here.
regulation: { token_rate: { per_second: 0 }, login_rate: { per_second: 0 } }
routes:
  - { host: "*", path_prefix: /, upstream: "http://127.0.0.1:$P_UPSTREAM", policy: authenticated }
  - { host: "*", path_prefix: /public, upstream: "http://127.0.0.1:$P_UPSTREAM", policy: public }
  # The same warm session with a signed identity assertion (issue 14: its cost ≤ 5 % of req/s).
  - { host: "*", path_prefix: /signed, upstream: "http://127.0.0.1:$P_UPSTREAM", assertion: true }
EOF
}
FD_CONF="$WORK/frontdoor.yaml"
fd_config "$P_FD" "$P_FD_ADMIN" "$WORK/fd-data" "" > "$FD_CONF"
FD_URL="http://127.0.0.1:$P_FD"
FD="$BIN --config $FD_CONF"
EMAIL=bench@example.com
PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
REDIRECT_URI=http://127.0.0.1:9999/callback

start_fd() { # the main frontdoor on FD_CONF (its log appended to): FD_PID
  "$BIN" --config "$FD_CONF" serve >> "$WORK/logs/frontdoor.log" 2>&1 &
  FD_PID=$!
  PIDS+=("$FD_PID")
  wait_http "http://127.0.0.1:$P_FD_ADMIN/healthz"
}
log "starting frontdoor :$P_FD"
start_fd
[ "$PROVIDER_ONLY" = 1 ] || wait_http "http://127.0.0.1:$P_BARE/bench.txt"

printf '%s\n' "$PASSWORD" | $FD users add --email "$EMAIL" --name "Bench User" --groups bench --password-stdin >/dev/null
USER_ID="$($FD users list --json | jq -r --arg e "$EMAIL" '.[] | select(.email == $e) | .id')"
read -r CC_ID CC_SECRET < <($FD apps create --name bench-cc --grant client_credentials --json | jq -r '"\(.client_id) \(.client_secret)"')
read -r WEB_ID WEB_SECRET < <($FD apps create --name bench-web --redirect-uri "$REDIRECT_URI" --first-party --json | jq -r '"\(.client_id) \(.client_secret)"')
API_TOKEN="$($FD tokens create --user "$EMAIL" --name bench --json | jq -r .token)"

# A session cookie, through the real sign-in form.
JAR="$WORK/jar.txt"
CSRF="$(curl -s -c "$JAR" -b "$JAR" "$FD_URL/_frontdoor/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -n1 | cut -d'"' -f4)"
expect 303 -c "$JAR" -b "$JAR" "$FD_URL/_frontdoor/login" --data-urlencode "email=$EMAIL" \
  --data-urlencode "password=$PASSWORD" --data-urlencode "csrf_token=$CSRF" --data-urlencode return_to=/
SESSION="$(awk '$6 == "frontdoor_session" {print $7}' "$JAR")"
[ -n "$SESSION" ] || die "no session cookie after signing in"
COOKIE="frontdoor_session=$SESSION"
# A Bearer JWT from the login API.
JWT="$(curl -s "$FD_URL/api/v1/login-check" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | jq -r .token)"
[ -n "$JWT" ] && [ "$JWT" != null ] || die "login-check answered no token"

if [ "$PROVIDER_ONLY" != 1 ]; then
# oauth2-proxy, both ways it is deployed, signed in through frontdoor's own OIDC provider (an
# interop check in itself): as a reverse proxy with a cookie session, and behind nginx
# auth_request. Each gets its own session cookie, from a real authorization code flow.
O2P_CALLBACK="http://127.0.0.1:$P_O2P/oauth2/callback"
O2P_NGINX_CALLBACK="http://127.0.0.1:$P_NGINX_O2P/oauth2/callback"
read -r O2P_ID O2P_SECRET < <($FD apps create --name oauth2-proxy --redirect-uri "$O2P_CALLBACK" \
  --redirect-uri "$O2P_NGINX_CALLBACK" --first-party --json | jq -r '"\(.client_id) \(.client_secret)"')
O2P_COOKIE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
o2p_start() { # HTTP_PORT REDIRECT_URL UPSTREAM [EXTRA FLAGS…]
  local port="$1" redirect="$2" upstream="$3"; shift 3
  "$O2P_BIN" --http-address="127.0.0.1:$port" --provider=oidc --oidc-issuer-url="$FD_URL" \
    --client-id="$O2P_ID" --client-secret="$O2P_SECRET" --redirect-url="$redirect" \
    --upstream="$upstream" --cookie-secret="$O2P_COOKIE_SECRET" --email-domain='*' \
    --cookie-secure=false --session-store-type=cookie --skip-provider-button --pass-user-headers \
    --set-xauthrequest --code-challenge-method=S256 --scope="openid email profile" \
    --request-logging=false --auth-logging=false "$@" > "$WORK/logs/oauth2-proxy-$port.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$port/ping"
}
log "starting oauth2-proxy :$P_O2P (reverse proxy) and :$P_O2P_AUTH (for nginx auth_request :$P_NGINX_O2P)"
o2p_start "$P_O2P" "$O2P_CALLBACK" "http://127.0.0.1:$P_UPSTREAM/"
o2p_start "$P_O2P_AUTH" "$O2P_NGINX_CALLBACK" "static://202" --reverse-proxy=true
o2p_sign_in() { # BASE_URL NAME: the authorization code flow through frontdoor (signed in in
  # $JAR); prints oauth2-proxy's session cookie.
  local base="$1" jar="$WORK/o2p-jar-$2.txt" url
  cp "$JAR" "$jar"
  url="$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$base/oauth2/start?rd=%2Fbench.txt")"
  case "$url" in "$FD_URL/oauth/authorize?"*) ;; *) die "oauth2-proxy at $base did not send to frontdoor: $url" ;; esac
  url="$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$url")"
  case "$url" in "$base/oauth2/callback?"*) ;; *) die "frontdoor did not answer oauth2-proxy at $base with a code: $url" ;; esac
  curl -s -o /dev/null -c "$jar" -b "$jar" "$url"
  awk '$6 == "_oauth2_proxy" {print $7}' "$jar"
}
O2P_COOKIE="_oauth2_proxy=$(o2p_sign_in "http://127.0.0.1:$P_O2P" proxy)"
O2P_NGINX_COOKIE="_oauth2_proxy=$(o2p_sign_in "http://127.0.0.1:$P_NGINX_O2P" nginx)"
[ "$O2P_COOKIE" != "_oauth2_proxy=" ] && [ "$O2P_NGINX_COOKIE" != "_oauth2_proxy=" ] \
  || die "oauth2-proxy set no session cookie (see $WORK/logs/oauth2-proxy-*.log)"

# Caddy with forward_auth to frontdoor (docs/forward-auth.md), as tests/e2e/forward_auth.rs runs it.
cat > "$WORK/Caddyfile" <<EOF
{
  admin off
  auto_https off
}
http://127.0.0.1:$P_CADDY_FA {
  log {
    output discard
  }
  handle /_frontdoor/* {
    reverse_proxy 127.0.0.1:$P_FD
  }
  handle {
    forward_auth 127.0.0.1:$P_FD {
      uri /_frontdoor/auth
      copy_headers X-Auth-Request-User X-Auth-Request-Email X-Auth-Request-Groups X-Auth-Request-Access
    }
    reverse_proxy 127.0.0.1:$P_UPSTREAM
  }
}
EOF
log "starting Caddy :$P_CADDY_FA (forward_auth to frontdoor)"
caddy run --adapter caddyfile --config "$WORK/Caddyfile" > "$WORK/logs/caddy.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_CADDY_FA/public/bench.txt"

# A realistic Cookie header: a corporate domain's ~3.5 KB of other cookies around frontdoor's.
BIG_COOKIE="$("$ROOT/bench/foreign-cookies.sh")${COOKIE}; _ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000"

# Every scenario answers 200 with the file before it is measured (and this warms the caches).
expect 200 "http://127.0.0.1:$P_UPSTREAM/bench.txt"
expect 200 "http://127.0.0.1:$P_NGINX_PROXY/bench.txt"
expect 200 "http://127.0.0.1:$P_BARE/bench.txt"
expect 401 "$FD_URL/bench.txt"
expect 401 "http://127.0.0.1:$P_NGINX_AUTH/bench.txt"
expect 200 -H "Cookie: $COOKIE" "http://127.0.0.1:$P_NGINX_AUTH/bench.txt"
expect 204 "http://127.0.0.1:$P_UPSTREAM/auth-204"
expect 200 "http://127.0.0.1:$P_NGINX_AUTH204/bench.txt"
expect 200 -H "Cookie: $COOKIE" "$FD_URL/bench.txt"
expect 200 -H "Api-Token: $API_TOKEN" "$FD_URL/bench.txt"
expect 200 -H "Authorization: Bearer $JWT" "$FD_URL/bench.txt"
expect 200 "$FD_URL/public/bench.txt"
expect 200 -H "Cookie: $COOKIE" "$FD_URL/signed/bench.txt"
expect 200 -H "Cookie: $BIG_COOKIE" "$FD_URL/bench.txt"
expect 200 -H "Cookie: $O2P_COOKIE" "http://127.0.0.1:$P_O2P/bench.txt"
expect 200 -H "Cookie: $O2P_NGINX_COOKIE" "http://127.0.0.1:$P_NGINX_O2P/bench.txt"
expect 200 -H "Cookie: $COOKIE" "http://127.0.0.1:$P_CADDY_FA/bench.txt"

fi # PROVIDER_ONLY

# ---------------------------------------------------------------------------------------------
# wrk
WRK_LUA="$ROOT/bench/wrk/bench.lua"
# run_wrk SECTION ID LABEL URL [ENV=VALUE …]: a warm-up, then the measured run.
run_wrk() {
  local section="$1" id="$2" label="$3" url="$4"; shift 4
  log "$label: wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency $url"
  env BENCH_THREADS="$WRK_THREADS" "$@" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$WRK_LUA" "$url" > /dev/null
  env BENCH_THREADS="$WRK_THREADS" "$@" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WRK_LUA" "$url" > "$WORK/raw/$id.txt"
  local json
  json="$(grep '^BENCH_JSON ' "$WORK/raw/$id.txt" | cut -c12-)"
  [ -n "$json" ] || die "no result from wrk for $id (see $WORK/raw/$id.txt)"
  record "$(jq -c --arg s "$section" --arg id "$id" --arg l "$label" '. + {section: $s, id: $id, label: $l, tool: "wrk"}' <<< "$json")"
  jq -r '"   \(.rps|floor) req/s, p50 \(.p50_us) µs, p99 \(.p99_us) µs, p99.9 \(.p999_us) µs, non-2xx/3xx \(.err_status)"' <<< "$json" >&2
}

if [ "$PROVIDER_ONLY" != 1 ] && [ "$CONNECTIONS_ONLY" != 1 ]; then
log "proxy path"
run_wrk proxy upstream "upstream direct (nginx static)" "http://127.0.0.1:$P_UPSTREAM/bench.txt"
run_wrk proxy nginx_proxy "nginx reverse proxy" "http://127.0.0.1:$P_NGINX_PROXY/bench.txt"
run_wrk proxy bare_pingora "bare Pingora proxy" "http://127.0.0.1:$P_BARE/bench.txt"
run_wrk proxy nginx_auth_request "nginx auth_request to frontdoor forward-auth (session cookie)" \
  "http://127.0.0.1:$P_NGINX_AUTH/bench.txt" BENCH_HEADERS="Cookie: $COOKIE"
run_wrk proxy nginx_auth_204 "nginx auth_request to a do-nothing 204 endpoint" "http://127.0.0.1:$P_NGINX_AUTH204/bench.txt"
run_wrk proxy fd_cookie "frontdoor inline, session cookie (warm)" "$FD_URL/bench.txt" BENCH_HEADERS="Cookie: $COOKIE"
run_wrk proxy fd_api_token "frontdoor inline, read-write Api-Token" "$FD_URL/bench.txt" BENCH_HEADERS="Api-Token: $API_TOKEN"
run_wrk proxy fd_bearer "frontdoor inline, Bearer JWT" "$FD_URL/bench.txt" BENCH_HEADERS="Authorization: Bearer $JWT"
run_wrk proxy fd_public "frontdoor inline, public route (no auth)" "$FD_URL/public/bench.txt"
run_wrk proxy fd_assertion "frontdoor inline, session cookie (warm), signed assertion" "$FD_URL/signed/bench.txt" BENCH_HEADERS="Cookie: $COOKIE"
run_wrk proxy fd_cookie_big "frontdoor inline, session cookie (warm) among 3.5 KB of other cookies" "$FD_URL/bench.txt" BENCH_HEADERS="Cookie: $BIG_COOKIE"
run_wrk proxy o2p_proxy "oauth2-proxy reverse proxy (cookie session)" "http://127.0.0.1:$P_O2P/bench.txt" BENCH_HEADERS="Cookie: $O2P_COOKIE"
run_wrk proxy nginx_o2p "nginx auth_request to oauth2-proxy (cookie session)" "http://127.0.0.1:$P_NGINX_O2P/bench.txt" BENCH_HEADERS="Cookie: $O2P_NGINX_COOKIE"
run_wrk proxy caddy_fd "Caddy forward_auth to frontdoor (session cookie)" "http://127.0.0.1:$P_CADDY_FA/bench.txt" BENCH_HEADERS="Cookie: $COOKIE"

# Paired rounds for the ratios the targets name. This machine's speed drifts by 10-30 % within
# minutes (other tenants of the host), so two rows measured minutes apart compare badly: here
# the rows a target compares run back to back, PAIR_ROUNDS times in turn, and the report
# divides their medians.
log "paired rounds: bare Pingora, nginx proxy, frontdoor (session cookie, with a signed assertion, among foreign cookies, Bearer JWT), nginx auth_request 204, oauth2-proxy both ways, $PAIR_ROUNDS rounds"
PAIRED_PROXY=(
  "bare_pingora|http://127.0.0.1:$P_BARE/bench.txt|"
  "nginx_proxy|http://127.0.0.1:$P_NGINX_PROXY/bench.txt|"
  "fd_cookie|$FD_URL/bench.txt|Cookie: $COOKIE"
  "fd_assertion|$FD_URL/signed/bench.txt|Cookie: $COOKIE"
  "fd_cookie_big|$FD_URL/bench.txt|Cookie: $BIG_COOKIE"
  "o2p_proxy|http://127.0.0.1:$P_O2P/bench.txt|Cookie: $O2P_COOKIE"
  "nginx_o2p|http://127.0.0.1:$P_NGINX_O2P/bench.txt|Cookie: $O2P_NGINX_COOKIE"
  "fd_bearer|$FD_URL/bench.txt|Authorization: Bearer $JWT"
  "nginx_auth_204|http://127.0.0.1:$P_NGINX_AUTH204/bench.txt|"
)
for round in $(seq 1 "$PAIR_ROUNDS"); do
  slot=0
  while IFS= read -r spec; do
    IFS='|' read -r pid url hdr <<< "$spec"
    env BENCH_THREADS="$WRK_THREADS" BENCH_HEADERS="$hdr" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
      -s "$WRK_LUA" "$url" < /dev/null > "$WORK/raw/paired-$pid-$round.txt"
    json="$(grep '^BENCH_JSON ' "$WORK/raw/paired-$pid-$round.txt" | cut -c12-)"
    [ -n "$json" ] || die "no result from wrk for paired $pid round $round"
    record "$(jq -c --arg id "$pid" --argjson r "$round" --argjson s "$slot" '. + {section: "paired", id: $id, round: $r, slot: $s, tool: "wrk"}' <<< "$json")"
    jq -r --arg id "$pid" --arg r "$round" --arg s "$slot" '"   round \($r) slot \($s) \($id): \(.rps|floor) req/s"' <<< "$json" >&2
    slot=$((slot + 1))
  done < <(shuffled "$round" "${PAIRED_PROXY[@]}")
done
fi # PROVIDER_ONLY, CONNECTIONS_ONLY

if [ "$PROVIDER_ONLY" != 1 ]; then
# Connections held by one node: their memory, and the active requests beside them.
# shellcheck source=bench/connections.sh
. "$ROOT/bench/connections.sh"
measure_connections
fi

if [ "$PROXY_ONLY" != 1 ]; then
if [ "$PROVIDER_ONLY" != 1 ]; then
# Cold path under load: every request carries a session that is in the store but not in the
# cache. Sessions are written into the store (bench/tools/sessions.mjs mint); enough for the
# run, and the share of requests that really missed is read from frontdoor's metrics.
DB="$WORK/fd-data/frontdoor.db"
import_sessions() { # DB CSV: by column name, so columns a later migration adds keep their defaults
  sqlite3 "$1" <<EOF
.timeout 10000
.mode csv
CREATE TABLE bench_minted (id_hash, user_id, tenant, created_at, expires_at, last_seen, auth_method, sid);
.import $2 bench_minted
INSERT INTO sessions (id_hash, user_id, tenant, created_at, expires_at, last_seen, auth_method, sid)
  SELECT * FROM bench_minted;
DROP TABLE bench_minted;
EOF
}
ROWS_PER_SEC_GUESS=15000
COLD_N=$(( ROWS_PER_SEC_GUESS * (DURATION + WARMUP) ))
[ "$COLD_N" -ge 20000 ] || COLD_N=20000
log "minting $COLD_N sessions for the cold path"
node bench/tools/sessions.mjs mint --data-dir "$WORK/fd-data" --user-id "$USER_ID" --count "$COLD_N" \
  --csv "$WORK/cold.csv" --cookies "$WORK/cold-cookies.txt" > /dev/null
import_sessions "$DB" "$WORK/cold.csv"
expect 200 -H "Cookie: $(head -n1 "$WORK/cold-cookies.txt")" "$FD_URL/bench.txt"
tail -n +2 "$WORK/cold-cookies.txt" > "$WORK/cold-cookies-rest.txt"
MISS0="$(metric "$P_FD_ADMIN" 'frontdoor_session_cache_requests_total{outcome="miss"}')"
HIT0="$(metric "$P_FD_ADMIN" 'frontdoor_session_cache_requests_total{outcome="hit"}')"
WARMUP_SAVED="$WARMUP"; WARMUP=0
log "cold path: wrk with a new session on every request"
env BENCH_THREADS="$WRK_THREADS" BENCH_COOKIES="$WORK/cold-cookies-rest.txt" \
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WRK_LUA" "$FD_URL/bench.txt" > "$WORK/raw/fd_cold.txt"
WARMUP="$WARMUP_SAVED"
MISS1="$(metric "$P_FD_ADMIN" 'frontdoor_session_cache_requests_total{outcome="miss"}')"
HIT1="$(metric "$P_FD_ADMIN" 'frontdoor_session_cache_requests_total{outcome="hit"}')"
json="$(grep '^BENCH_JSON ' "$WORK/raw/fd_cold.txt" | cut -c12-)"
record "$(jq -c --argjson m "$(( ${MISS1%.*} - ${MISS0%.*} ))" --argjson h "$(( ${HIT1%.*} - ${HIT0%.*} ))" \
  '. + {section: "proxy", id: "fd_cold", label: "frontdoor inline, session cookie, cache miss on every request (cold)", tool: "wrk", misses: $m, hits: $h}' <<< "$json")"
jq -r '"   \(.rps|floor) req/s, p50 \(.p50_us) µs, p99 \(.p99_us) µs, p99.9 \(.p999_us) µs, misses \(.misses), hits \(.hits)"' <<< "$(tail -n1 "$RESULTS")" >&2

log "cold path: one request at a time, $COLD_LATENCY_SESSIONS new sessions, then the same again (warm)"
node bench/tools/sessions.mjs mint --data-dir "$WORK/fd-data" --user-id "$USER_ID" --count "$COLD_LATENCY_SESSIONS" \
  --csv "$WORK/lat.csv" --cookies "$WORK/lat-cookies.txt" > /dev/null
import_sessions "$DB" "$WORK/lat.csv"
MISS0="$(metric "$P_FD_ADMIN" 'frontdoor_session_cache_requests_total{outcome="miss"}')"
json="$(node bench/tools/sessions.mjs latency --url "$FD_URL/bench.txt" --cookies "$WORK/lat-cookies.txt")"
MISS1="$(metric "$P_FD_ADMIN" 'frontdoor_session_cache_requests_total{outcome="miss"}')"
record "$(jq -c --argjson m "$(( ${MISS1%.*} - ${MISS0%.*} ))" '. + {section: "cold_latency", misses: $m}' <<< "$json")"
jq -r '"   cold p50 \(.cold.p50_ms) ms p99 \(.cold.p99_ms) ms; warm p50 \(.warm.p50_ms) ms p99 \(.warm.p99_ms) ms; misses \(.misses)"' <<< "$(tail -n1 "$RESULTS")" >&2
fi # PROVIDER_ONLY

# ---------------------------------------------------------------------------------------------
# Provider path: frontdoor and oidc-provider
# Each pair of rows uses the same signing algorithm on both providers: RS256 (frontdoor's
# default) on frontdoor :$P_FD and oidc-provider :$P_OIDC, ES256 on a second frontdoor and a
# second oidc-provider, each created the same way.
if [ "$PROXY_THREADS" != "$PROVIDER_THREADS" ]; then
  log "restarting frontdoor :$P_FD with $PROVIDER_THREADS threads for the provider rows"
  stop_pids "$FD_PID"
  FD_THREADS="$PROVIDER_THREADS" fd_config "$P_FD" "$P_FD_ADMIN" "$WORK/fd-data" "" > "$FD_CONF"
  start_fd
fi
OIDC_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
start_oidc() { # PORT ALG LOG-NAME
  log "starting oidc-provider :$1 ($2)"
  node "$OIDC_DIR/provider.mjs" --port "$1" --alg "$2" --secret "$OIDC_SECRET" --redirect-uri "$REDIRECT_URI" \
    --email "$EMAIL" --password "$PASSWORD" > "$WORK/logs/$3.out" 2> "$WORK/logs/$3.err" &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$1/.well-known/openid-configuration"
}
start_oidc "$P_OIDC" RS256 oidc
start_oidc "$P_OIDC_ES" ES256 oidc-es256
OIDC_URL="http://127.0.0.1:$P_OIDC"
OIDC_ES_URL="http://127.0.0.1:$P_OIDC_ES"
OIDC_VERSION="$(node -p "require('$OIDC_DIR/node_modules/oidc-provider/package.json').version")"

log "starting frontdoor :$P_FD_ES with an ES256 signing key"
FDES_CONF="$WORK/frontdoor-es256.yaml"
FD_THREADS="$PROVIDER_THREADS" fd_config "$P_FD_ES" "$P_FD_ES_ADMIN" "$WORK/fd-es256-data" "keys: { algorithm: ES256 }" > "$FDES_CONF"
FDES_URL="http://127.0.0.1:$P_FD_ES"
FDES="$BIN --config $FDES_CONF"
"$BIN" --config "$FDES_CONF" serve > "$WORK/logs/frontdoor-es256.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_FD_ES_ADMIN/healthz"
printf '%s\n' "$PASSWORD" | $FDES users add --email "$EMAIL" --name "Bench User" --groups bench --password-stdin >/dev/null
read -r CC_ES_ID CC_ES_SECRET < <($FDES apps create --name bench-cc --grant client_credentials --json | jq -r '"\(.client_id) \(.client_secret)"')
read -r WEB_ES_ID WEB_ES_SECRET < <($FDES apps create --name bench-web --redirect-uri "$REDIRECT_URI" --first-party --json | jq -r '"\(.client_id) \(.client_secret)"')

basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
FD_CC_AUTH="$(basic "$CC_ID" "$CC_SECRET")"
OIDC_CC_AUTH="$(basic bench-cc "$OIDC_SECRET")"
OIDC_IN_AUTH="$(basic bench-introspect "$OIDC_SECRET")"
FORM='Content-Type: application/x-www-form-urlencoded'

FDES_CC_AUTH="$(basic "$CC_ES_ID" "$CC_ES_SECRET")"

jwt_alg() { # JWT: the alg of its JWS header
  local h="${1%%.*}"
  h="$(printf '%s' "$h" | tr '_-' '/+')"
  while [ $(( ${#h} % 4 )) -ne 0 ]; do h="$h="; done
  printf '%s' "$h" | base64 -d 2>/dev/null | jq -r '.alg // "none"' 2>/dev/null || echo "not a JWT"
}
expect_alg() { # WHAT WANT: the access token in last-body is a JWT signed with WANT
  local got
  got="$(jwt_alg "$(jq -r .access_token "$WORK/last-body")")"
  [ "$got" = "$2" ] || die "$1: the access token is signed with $got, not $2 ($(head -c 300 "$WORK/last-body"))"
  log "   $1: $got access token"
}
expect_token_algs() { # WHAT WANT ISSUER CLIENT SECRET SCOPE: a login and a refresh sign with WANT
  local json
  json="$(node bench/tools/oauth_load.mjs algs --issuer "$3" --client-id "$4" --client-secret="$5" \
    --redirect-uri "$REDIRECT_URI" --scope "$6" --email "$EMAIL" --password "$PASSWORD")" \
    || die "$1: a login and a refresh for the token check failed"
  jq -e --arg a "$2" '.code.access_token == $a and .code.id_token == $a and ([.code[], .refresh[]] | all(. == $a))' \
    <<< "$json" > /dev/null || die "$1: tokens are not all signed with $2: $json"
  log "   $1: $json"
}

# The physical limit: raw signatures per second with the library frontdoor signs with, on
# every core, in this run (the grant rows are divided by it).
log "raw signatures per second (examples/signatures, $DURATION s each)"
SIGS="$("$SIG_BIN" "$DURATION")"
record "$(jq -c '. + {section: "signatures"}' <<< "$SIGS")"
log "   $SIGS"

log "token signing algorithms"
expect 200 -H "Authorization: $FD_CC_AUTH" "$FD_URL/oauth/token" -d grant_type=client_credentials
expect_alg "frontdoor client_credentials" RS256
FD_CC_TOKEN="$(jq -r .access_token "$WORK/last-body")"
expect 200 -H "Authorization: $OIDC_CC_AUTH" "$OIDC_URL/token" -d grant_type=client_credentials
expect_alg "oidc-provider client_credentials" RS256
expect 200 -H "Authorization: $FDES_CC_AUTH" "$FDES_URL/oauth/token" -d grant_type=client_credentials
expect_alg "frontdoor (ES256) client_credentials" ES256
expect 200 -H "Authorization: $OIDC_CC_AUTH" "$OIDC_ES_URL/token" -d grant_type=client_credentials
expect_alg "oidc-provider (ES256) client_credentials" ES256
expect_token_algs "frontdoor login and refresh" RS256 "$FD_URL" "$WEB_ID" "$WEB_SECRET" "openid offline_access"
expect_token_algs "oidc-provider login and refresh" RS256 "$OIDC_URL" bench-web "$OIDC_SECRET" "openid offline_access api"
expect_token_algs "frontdoor (ES256) login and refresh" ES256 "$FDES_URL" "$WEB_ES_ID" "$WEB_ES_SECRET" "openid offline_access"
expect_token_algs "oidc-provider (ES256) login and refresh" ES256 "$OIDC_ES_URL" bench-web "$OIDC_SECRET" "openid offline_access api"
expect 200 -H "Authorization: $OIDC_IN_AUTH" "$OIDC_URL/token" -d grant_type=client_credentials
OIDC_IN_TOKEN="$(jq -r .access_token "$WORK/last-body")"
expect 200 -H "Authorization: $FD_CC_AUTH" "$FD_URL/oauth/introspect" -d "token=$FD_CC_TOKEN"
[ "$(jq -r .active "$WORK/last-body")" = true ] || die "frontdoor introspection: $(cat "$WORK/last-body")"
expect 200 -H "Authorization: $OIDC_IN_AUTH" "$OIDC_URL/token/introspection" -d "token=$OIDC_IN_TOKEN"
[ "$(jq -r .active "$WORK/last-body")" = true ] || die "oidc-provider introspection: $(cat "$WORK/last-body")"

run_wrk provider fd_cc "frontdoor: client_credentials grant" "$FD_URL/oauth/token" BENCH_METHOD=POST \
  BENCH_BODY=grant_type=client_credentials BENCH_HEADERS="Authorization: $FD_CC_AUTH
$FORM"
run_wrk provider oidc_cc "oidc-provider: client_credentials grant" "$OIDC_URL/token" BENCH_METHOD=POST \
  BENCH_BODY=grant_type=client_credentials BENCH_HEADERS="Authorization: $OIDC_CC_AUTH
$FORM"
run_wrk provider fd_cc_es256 "frontdoor: client_credentials grant, ES256 key" "$FDES_URL/oauth/token" BENCH_METHOD=POST \
  BENCH_BODY=grant_type=client_credentials BENCH_HEADERS="Authorization: $FDES_CC_AUTH
$FORM"
run_wrk provider oidc_cc_es256 "oidc-provider: client_credentials grant, ES256 key" "$OIDC_ES_URL/token" BENCH_METHOD=POST \
  BENCH_BODY=grant_type=client_credentials BENCH_HEADERS="Authorization: $OIDC_CC_AUTH
$FORM"
run_wrk provider fd_introspect "frontdoor: introspection" "$FD_URL/oauth/introspect" BENCH_METHOD=POST \
  BENCH_BODY="token=$FD_CC_TOKEN" BENCH_HEADERS="Authorization: $FD_CC_AUTH
$FORM"
run_wrk provider oidc_introspect "oidc-provider: introspection" "$OIDC_URL/token/introspection" BENCH_METHOD=POST \
  BENCH_BODY="token=$OIDC_IN_TOKEN" BENCH_HEADERS="Authorization: $OIDC_IN_AUTH
$FORM"

run_node() { # ID LABEL OP CONCURRENCY ISSUER CLIENT SECRET SCOPE
  local id="$1" label="$2" op="$3" conc="$4" issuer="$5" client="$6" secret="$7" scope="$8"
  log "$label: $conc workers for ${DURATION}s"
  # warm-up, then the measured run
  node bench/tools/oauth_load.mjs "$op" --issuer "$issuer" --client-id "$client" --client-secret="$secret" \
    --redirect-uri "$REDIRECT_URI" --scope "$scope" --email "$EMAIL" --password "$PASSWORD" \
    --concurrency "$conc" --duration "$WARMUP" > /dev/null
  local json
  json="$(node bench/tools/oauth_load.mjs "$op" --issuer "$issuer" --client-id "$client" --client-secret="$secret" \
    --redirect-uri "$REDIRECT_URI" --scope "$scope" --email "$EMAIL" --password "$PASSWORD" \
    --concurrency "$conc" --duration "$DURATION")" || die "$label failed: $json"
  record "$(jq -c --arg id "$id" --arg l "$label" --argjson c "$conc" '. + {section: "provider", id: $id, label: $l, tool: "node", concurrency: $c, rps: .rate}' <<< "$json")"
  jq -r '"   \(.rate) /s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, errors \(.errors)"' <<< "$json" >&2
}
# Refresh tokens for a wrk refresh run, from real logins (not timed): one per connection and a
# few spare per wrk thread, since wrk asks the script for a request once more than it has
# connections before the first answer arrives.
mint_refresh_tokens() { # LABEL ISSUER CLIENT SECRET SCOPE FILE
  local count=$(( CONNECTIONS + 4 * WRK_THREADS ))
  node bench/tools/oauth_load.mjs tokens --issuer "$2" --client-id "$3" --client-secret="$4" \
    --redirect-uri "$REDIRECT_URI" --scope "$5" --email "$EMAIL" --password "$PASSWORD" \
    --count "$count" > "$6" || die "$1: signing in for refresh tokens failed"
  [ "$(grep -c . "$6")" = "$count" ] || die "$1: fewer refresh tokens than asked for"
}
# Refresh grants with wrk: each connection's request carries a refresh token from its thread's
# pool and the rotated token in the answer goes back into it (bench/wrk/bench.lua). One set of
# tokens for the warm-up and one for the run, since a warm-up spends the tokens it starts with.
run_wrk_refresh() { # ID LABEL TOKEN_URL ISSUER CLIENT SECRET SCOPE
  local id="$1" label="$2" url="$3" issuer="$4" client="$5" secret="$6" scope="$7" phase
  for phase in warmup run; do
    mint_refresh_tokens "$label" "$issuer" "$client" "$secret" "$scope" "$WORK/refresh-$id-$phase.txt"
  done
  log "$label: wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency, one rotating refresh token per connection"
  env BENCH_THREADS="$WRK_THREADS" BENCH_REFRESH_TOKENS="$WORK/refresh-$id-warmup.txt" BENCH_HEADERS="Authorization: $(basic "$client" "$secret")
$FORM" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$WRK_LUA" "$url" > /dev/null
  env BENCH_THREADS="$WRK_THREADS" BENCH_REFRESH_TOKENS="$WORK/refresh-$id-run.txt" BENCH_HEADERS="Authorization: $(basic "$client" "$secret")
$FORM" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WRK_LUA" "$url" > "$WORK/raw/$id.txt"
  local json
  json="$(grep '^BENCH_JSON ' "$WORK/raw/$id.txt" | cut -c12-)"
  [ -n "$json" ] || die "no result from wrk for $id (see $WORK/raw/$id.txt)"
  record "$(jq -c --arg id "$id" --arg l "$label" '. + {section: "provider", id: $id, label: $l, tool: "wrk"}' <<< "$json")"
  jq -r '"   \(.rps|floor) /s, p50 \(.p50_us) µs, p99 \(.p99_us) µs, non-2xx \(.err_status)"' <<< "$json" >&2
}
run_wrk_refresh fd_refresh "frontdoor: refresh_token grant" "$FD_URL/oauth/token" "$FD_URL" "$WEB_ID" "$WEB_SECRET" "openid offline_access"
run_wrk_refresh oidc_refresh "oidc-provider: refresh_token grant" "$OIDC_URL/token" "$OIDC_URL" bench-web "$OIDC_SECRET" "openid offline_access api"
run_wrk_refresh fd_refresh_es256 "frontdoor: refresh_token grant, ES256 key" "$FDES_URL/oauth/token" "$FDES_URL" "$WEB_ES_ID" "$WEB_ES_SECRET" "openid offline_access"
run_wrk_refresh oidc_refresh_es256 "oidc-provider: refresh_token grant, ES256 key" "$OIDC_ES_URL/token" "$OIDC_ES_URL" bench-web "$OIDC_SECRET" "openid offline_access api"
run_node fd_login "frontdoor: password login, form to tokens" login "$LOGIN_CONCURRENCY" "$FD_URL" "$WEB_ID" "$WEB_SECRET" "openid offline_access"
run_node oidc_login "oidc-provider: password login, form to tokens" login "$LOGIN_CONCURRENCY" "$OIDC_URL" bench-web "$OIDC_SECRET" "openid offline_access api"

# ---------------------------------------------------------------------------------------------
# Provider targets (issue 17 item 5): grants ÷ raw signatures, and refresh ÷ client_credentials
# on SQLite and on PostgreSQL, from paired rounds: each round measures the raw signature rate
# and every grant row back to back, and the report divides the rows' medians.
#
# PostgreSQL: two more frontdoors (RS256, ES256) with `store:` a database of their own. By default
# on a server the bench starts in its scratch directory with PostgreSQL's durable defaults
# (fsync, synchronous_commit, full_page_writes on; scripts/postgres.sh's test server has them
# off), since a refresh grant's cost is a durable commit; BENCH_POSTGRES_URL names another
# server instead (its settings are recorded with the results). BENCH_POSTGRES=0: SQLite only.
P_FD_PG=$((PORT_BASE + 50)); P_FD_PG_ADMIN=$((PORT_BASE + 51))
P_FD_PG_ES=$((PORT_BASE + 52)); P_FD_PG_ES_ADMIN=$((PORT_BASE + 53)); P_PG=$((PORT_BASE + 54))
PG_URL="${BENCH_POSTGRES_URL:-}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
if [ "${BENCH_POSTGRES:-1}" != 0 ] && [ -z "$PG_URL" ]; then
  if [ -x "$PG_BIN/initdb" ]; then
    (exec 3<>"/dev/tcp/127.0.0.1/$P_PG") 2>/dev/null && die "port $P_PG on 127.0.0.1 is in use; set BENCH_PORT_BASE to another base"
    log "starting a durable PostgreSQL :$P_PG in $WORK/pg"
    as_pg=()
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
      as_pg=(runuser -u postgres --)
    fi
    mkdir -p "$WORK/pg"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$WORK/pg"
    "${as_pg[@]}" "$PG_BIN/initdb" --pgdata="$WORK/pg/data" --username=postgres --auth-local=trust \
      --auth-host=trust --encoding=UTF8 --locale=C.UTF-8 > "$WORK/logs/initdb.log" 2>&1 \
      || die "initdb failed (see $WORK/logs/initdb.log)"
    "${as_pg[@]}" "$PG_BIN/pg_ctl" --pgdata="$WORK/pg/data" --log="$WORK/pg/server.log" --wait \
      --options="-c listen_addresses=127.0.0.1 -c port=$P_PG -c unix_socket_directories=$WORK/pg" \
      start > /dev/null || die "PostgreSQL did not start (see $WORK/pg/server.log)"
    PIDS+=("$(head -n1 "$WORK/pg/data/postmaster.pid")")
    PG_URL="postgres://postgres@127.0.0.1:$P_PG/postgres"
  else
    log "no PostgreSQL server binaries (Debian: apt-get install postgresql): no PostgreSQL rows"
  fi
fi
if [ -n "$PG_URL" ] && [ "${BENCH_POSTGRES:-1}" != 0 ]; then
  command -v psql >/dev/null 2>&1 || die "psql is missing (Debian: apt-get install postgresql-client)"
  pg_db_url() { printf '%s/%s' "${PG_URL%/*}" "$1"; }
  for db in frontdoor_bench_rs256 frontdoor_bench_es256; do
    psql -X -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" > /dev/null \
      || die "cannot create the database $db on $PG_URL"
  done
  record "$(psql -X -At "$PG_URL" -c "SELECT json_build_object('section', 'postgres', 'own_server', $([ -z "${BENCH_POSTGRES_URL:-}" ] && echo true || echo false),
    'version', current_setting('server_version'), 'fsync', current_setting('fsync'),
    'synchronous_commit', current_setting('synchronous_commit'), 'full_page_writes', current_setting('full_page_writes'))")"
  log "   PostgreSQL: $(tail -n1 "$RESULTS")"
  start_fd_pg() { # PORT ADMIN NAME EXTRA_YAML: starts it with the bench user; FD_PG is its CLI
    local conf="$WORK/frontdoor-$3.yaml"
    FD_THREADS="$PROVIDER_THREADS" fd_config "$1" "$2" "$WORK/$3-data" "$4" > "$conf"
    "$BIN" --config "$conf" serve > "$WORK/logs/frontdoor-$3.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$2/healthz"
    FD_PG="$BIN --config $conf"
    printf '%s\n' "$PASSWORD" | $FD_PG users add --email "$EMAIL" --name "Bench User" --groups bench --password-stdin >/dev/null
  }
  app_pair() { # CLI: the client ids and secrets of a client_credentials app and a web app
    printf '%s %s\n' "$($1 apps create --name bench-cc --grant client_credentials --json | jq -r '"\(.client_id) \(.client_secret)"')" \
      "$($1 apps create --name bench-web --redirect-uri "$REDIRECT_URI" --first-party --json | jq -r '"\(.client_id) \(.client_secret)"')"
  }
  log "starting frontdoor :$P_FD_PG (RS256) and :$P_FD_PG_ES (ES256) on PostgreSQL"
  start_fd_pg "$P_FD_PG" "$P_FD_PG_ADMIN" fd-pg "store: $(pg_db_url frontdoor_bench_rs256)"
  read -r PG_CC_ID PG_CC_SECRET PG_WEB_ID PG_WEB_SECRET < <(app_pair "$FD_PG")
  start_fd_pg "$P_FD_PG_ES" "$P_FD_PG_ES_ADMIN" fd-pg-es256 "store: $(pg_db_url frontdoor_bench_es256)
keys: { algorithm: ES256 }"
  read -r PG_ES_CC_ID PG_ES_CC_SECRET PG_ES_WEB_ID PG_ES_WEB_SECRET < <(app_pair "$FD_PG")
  FDPG_URL="http://127.0.0.1:$P_FD_PG"
  FDPG_ES_URL="http://127.0.0.1:$P_FD_PG_ES"
  expect 200 -H "Authorization: $(basic "$PG_CC_ID" "$PG_CC_SECRET")" "$FDPG_URL/oauth/token" -d grant_type=client_credentials
  expect_alg "frontdoor on PostgreSQL client_credentials" RS256
  expect 200 -H "Authorization: $(basic "$PG_ES_CC_ID" "$PG_ES_CC_SECRET")" "$FDPG_ES_URL/oauth/token" -d grant_type=client_credentials
  expect_alg "frontdoor (ES256) on PostgreSQL client_credentials" ES256
  expect_token_algs "frontdoor on PostgreSQL login and refresh" RS256 "$FDPG_URL" "$PG_WEB_ID" "$PG_WEB_SECRET" "openid offline_access"
  expect_token_algs "frontdoor (ES256) on PostgreSQL login and refresh" ES256 "$FDPG_ES_URL" "$PG_ES_WEB_ID" "$PG_ES_WEB_SECRET" "openid offline_access"
fi

# The paired rows: ID|ISSUER|CLIENT|SECRET|SCOPE, a client_credentials row when SCOPE is empty,
# else refresh grants of tokens signed in with SCOPE. A refresh with `openid` signs two tokens
# (access and ID token) where client_credentials signs one; the `refresh1` rows ask for
# `offline_access` alone, one signature, so that refresh ÷ client_credentials measures what the
# rotation's durable write costs. The `ccs` rows are client_credentials through the refresh rows'
# Lua calls in wrk (BENCH_SCRIPTED in bench/wrk/bench.lua): a refresh row's wrk formats each
# request and reads each answer, which costs wrk about 7 µs of CPU per request more than a
# static request, on cores it shares with the server; refresh ÷ client_credentials divides by
# these, so that the ratio is the server's difference. The `cc` rows (a static request, the
# cheapest client) are for grants ÷ raw signatures.
PAIRED_PROVIDER=(
  "fd_cc|$FD_URL|$CC_ID|$CC_SECRET|"
  "fd_cc_es256|$FDES_URL|$CC_ES_ID|$CC_ES_SECRET|"
  "fd_ccs|$FD_URL|$CC_ID|$CC_SECRET|"
  "fd_ccs_es256|$FDES_URL|$CC_ES_ID|$CC_ES_SECRET|"
  "fd_refresh|$FD_URL|$WEB_ID|$WEB_SECRET|openid offline_access"
  "fd_refresh_es256|$FDES_URL|$WEB_ES_ID|$WEB_ES_SECRET|openid offline_access"
  "fd_refresh1|$FD_URL|$WEB_ID|$WEB_SECRET|offline_access"
  "fd_refresh1_es256|$FDES_URL|$WEB_ES_ID|$WEB_ES_SECRET|offline_access"
)
if [ -n "${FDPG_URL:-}" ]; then
  PAIRED_PROVIDER+=(
    "pg_ccs|$FDPG_URL|$PG_CC_ID|$PG_CC_SECRET|"
    "pg_ccs_es256|$FDPG_ES_URL|$PG_ES_CC_ID|$PG_ES_CC_SECRET|"
    "pg_refresh|$FDPG_URL|$PG_WEB_ID|$PG_WEB_SECRET|openid offline_access"
    "pg_refresh_es256|$FDPG_ES_URL|$PG_ES_WEB_ID|$PG_ES_WEB_SECRET|openid offline_access"
    "pg_refresh1|$FDPG_URL|$PG_WEB_ID|$PG_WEB_SECRET|offline_access"
    "pg_refresh1_es256|$FDPG_ES_URL|$PG_ES_WEB_ID|$PG_ES_WEB_SECRET|offline_access"
  )
fi
log "provider paired rounds: raw signatures and ${#PAIRED_PROVIDER[@]} grant rows, $PAIR_ROUNDS rounds"
for round in $(seq 0 "$PAIR_ROUNDS"); do
  # Round 0 is the warm-up (every instance, cache and pool), not recorded; refresh tokens for a
  # round are minted before any of its rows runs (the rows' sign-ins at once: Argon2 on every
  # core), so that no sign-in overlaps a measurement.
  minting=()
  for spec in "${PAIRED_PROVIDER[@]}"; do
    IFS='|' read -r pid issuer client secret scope <<< "$spec"
    [ -z "$scope" ] && continue
    mint_refresh_tokens "$pid" "$issuer" "$client" "$secret" "$scope" "$WORK/paired-$pid.tokens" &
    minting+=($!)
  done
  for m in "${minting[@]}"; do wait "$m" || die "minting refresh tokens for round $round failed"; done
  secs="$DURATION"; [ "$round" -gt 0 ] || secs="$WARMUP"
  if [ "$round" -gt 0 ]; then
    json="$("$SIG_BIN" "$secs")"
    record "$(jq -c --argjson r "$round" '. + {section: "provider_paired", id: "signatures", round: $r}' <<< "$json")"
    jq -r --arg r "$round" '"   round \($r) raw signatures: RS256 \(.rs256_per_s)/s, ES256 \(.es256_per_s)/s"' <<< "$json" >&2
  fi
  slot=0
  while IFS= read -r spec; do
    IFS='|' read -r pid issuer client secret scope <<< "$spec"
    if [ -z "$scope" ]; then
      load=(BENCH_METHOD=POST BENCH_BODY=grant_type=client_credentials)
      case "$pid" in *_ccs*) load+=(BENCH_SCRIPTED=1) ;; esac
    else
      load=(BENCH_REFRESH_TOKENS="$WORK/paired-$pid.tokens")
    fi
    env BENCH_THREADS="$WRK_THREADS" "${load[@]}" BENCH_HEADERS="Authorization: $(basic "$client" "$secret")
$FORM" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${secs}s" --latency -s "$WRK_LUA" "$issuer/oauth/token" \
      < /dev/null > "$WORK/raw/paired-$pid-$round.txt"
    [ "$round" -gt 0 ] || continue
    json="$(grep '^BENCH_JSON ' "$WORK/raw/paired-$pid-$round.txt" | cut -c12-)"
    [ -n "$json" ] || die "no result from wrk for paired $pid round $round"
    record "$(jq -c --arg id "$pid" --argjson r "$round" --argjson s "$slot" --arg scope "$scope" \
      '. + {section: "provider_paired", id: $id, round: $r, slot: $s, scope: $scope, tool: "wrk"}' <<< "$json")"
    jq -r --arg id "$pid" --arg r "$round" --arg s "$slot" '"   round \($r) slot \($s) \($id): \(.rps|floor)/s, non-2xx \(.err_status)"' <<< "$json" >&2
    slot=$((slot + 1))
  done < <(shuffled "$round" "${PAIRED_PROVIDER[@]}")
done
if [ -n "${FDPG_URL:-}" ] && [ -z "${BENCH_POSTGRES_URL:-}" ] && [ -d "$WORK/pg/data" ]; then
  "${as_pg[@]}" "$PG_BIN/pg_ctl" --pgdata="$WORK/pg/data" --mode=fast --wait stop > /dev/null || true
fi

if [ "$PROVIDER_ONLY" != 1 ]; then
# ---------------------------------------------------------------------------------------------
# Memory: a second frontdoor whose cache keeps every session for the whole run.
log "memory: a second frontdoor :$P_MEM with a cache that keeps sessions"
MAX_COUNT=0
for n in $MEM_COUNTS; do [ "$n" -gt "$MAX_COUNT" ] && MAX_COUNT="$n"; done
MEM_CONF="$WORK/frontdoor-mem.yaml"
fd_config "$P_MEM" "$P_MEM_ADMIN" "$WORK/mem-data" \
  "session: { ttl: 24h, idle_timeout: 24h, cache_ttl: 24h, cache_capacity: $(( MAX_COUNT * 2 + 1000 )) }" > "$MEM_CONF"
MEM_URL="http://127.0.0.1:$P_MEM"
MEMFD="$BIN --config $MEM_CONF"
"$BIN" --config "$MEM_CONF" serve > "$WORK/logs/frontdoor-mem.log" 2>&1 &
MEM_PID=$!
PIDS+=("$MEM_PID")
wait_http "http://127.0.0.1:$P_MEM_ADMIN/healthz"
printf '%s\n' "$PASSWORD" | $MEMFD users add --email "$EMAIL" --name "Bench User" --groups bench --password-stdin >/dev/null
MEM_USER_ID="$($MEMFD users list --json | jq -r --arg e "$EMAIL" '.[] | select(.email == $e) | .id')"
# The 0 row: after the same kind of traffic (one real session, requests on 64 connections), so
# that buffers and thread-local allocator caches exist before the first reading.
JAR2="$WORK/jar2.txt"
CSRF="$(curl -s -c "$JAR2" -b "$JAR2" "$MEM_URL/_frontdoor/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -n1 | cut -d'"' -f4)"
expect 303 -c "$JAR2" -b "$JAR2" "$MEM_URL/_frontdoor/login" --data-urlencode "email=$EMAIL" \
  --data-urlencode "password=$PASSWORD" --data-urlencode "csrf_token=$CSRF" --data-urlencode return_to=/
MEM_COOKIE="frontdoor_session=$(awk '$6 == "frontdoor_session" {print $7}' "$JAR2")"
env BENCH_THREADS="$WRK_THREADS" BENCH_HEADERS="Cookie: $MEM_COOKIE" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d1s -s "$WRK_LUA" "$MEM_URL/bench.txt" > /dev/null
sleep 1
RSS0="$(rss_kib "$MEM_PID")"
record "{\"section\":\"memory\",\"sessions\":0,\"rss_kib\":$RSS0,\"misses\":0}"
log "   0 sessions: RSS $RSS0 KiB"
LOADED=0
MEM_DB="$WORK/mem-data/frontdoor.db"
for n in $MEM_COUNTS; do
  add=$(( n - LOADED ))
  [ "$add" -gt 0 ] || continue
  log "memory: $add more sessions (to $n): mint, import, request each once"
  node bench/tools/sessions.mjs mint --data-dir "$WORK/mem-data" --user-id "$MEM_USER_ID" --count "$add" \
    --ttl 86400 --csv "$WORK/mem.csv" --cookies "$WORK/mem-cookies.txt" > /dev/null
  import_sessions "$MEM_DB" "$WORK/mem.csv"
  MISS0="$(metric "$P_MEM_ADMIN" 'frontdoor_session_cache_requests_total{outcome="miss"}')"
  loadjson="$(node bench/tools/sessions.mjs load --url "$MEM_URL/bench.txt" --cookies "$WORK/mem-cookies.txt" --concurrency 32)" \
    || die "loading sessions failed: $loadjson"
  MISS1="$(metric "$P_MEM_ADMIN" 'frontdoor_session_cache_requests_total{outcome="miss"}')"
  LOADED="$n"
  sleep 2
  RSS="$(rss_kib "$MEM_PID")"
  record "$(jq -c --argjson n "$n" --argjson r "$RSS" --argjson m "$(( ${MISS1%.*} - ${MISS0%.*} ))" \
    '{section: "memory", sessions: $n, rss_kib: $r, misses: $m, load_rate: .rate, load_seconds: .seconds}' <<< "$loadjson")"
  log "   $n sessions: RSS $RSS KiB (loaded at $(jq -r .rate <<< "$loadjson")/s)"
  rm -f "$WORK/mem.csv" "$WORK/mem-cookies.txt"
done
fi # PROVIDER_ONLY

fi # PROXY_ONLY

# ---------------------------------------------------------------------------------------------
# Report
log "writing $OUT"
MACHINE="$(jq -n \
  --arg nproc "$(nproc)" \
  --arg cpu "$(lscpu | awk -F: '/^Model name/ {gsub(/^[ \t]+/, "", $2); print $2; exit}')" \
  --arg mem "$(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)" \
  --arg kernel "$(uname -sr)" \
  --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg nginx "$("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///')" \
  --arg wrk "$(wrk -v 2>&1 | head -n1 | awk '{print $2}')" \
  --arg node "$(node --version)" \
  --arg oidc "${OIDC_VERSION:-not run}" \
  --arg duration "$DURATION" --arg connections "$CONNECTIONS" --arg threads "$WRK_THREADS" \
  --arg proxy_threads "$PROXY_THREADS" --arg provider_threads "$PROVIDER_THREADS" --arg nginx_workers "$NGINX_WORKERS" \
  --arg upstream_workers "$UPSTREAM_WORKERS" --arg upstream_sendfile "$UPSTREAM_SENDFILE" \
  --arg login_c "$LOGIN_CONCURRENCY" --arg pair_rounds "$PAIR_ROUNDS" \
  --arg smoke "$SMOKE" \
  --arg dirty "$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null && echo 0 || echo 1)" \
  '{nproc: $nproc, cpu: $cpu, memory: $mem, kernel: $kernel, date: $date, commit: $commit,
    nginx: $nginx, wrk: $wrk, node: $node, oidc_provider: $oidc, duration_s: ($duration|tonumber),
    connections: ($connections|tonumber), wrk_threads: ($threads|tonumber),
    proxy_threads: ($proxy_threads|tonumber), provider_threads: ($provider_threads|tonumber),
    nginx_workers: ($nginx_workers|tonumber),
    upstream_workers: ($upstream_workers|tonumber), upstream_sendfile: $upstream_sendfile,
    login_concurrency: ($login_c|tonumber), pair_rounds: ($pair_rounds|tonumber), smoke: ($smoke == "1"), dirty: ($dirty == "1")}')"
mkdir -p "$OUT"
README_ARG=()
if [ "$(cd "$OUT" && pwd -P)" = "$(cd "$ROOT/docs/bench" 2>/dev/null && pwd -P)" ]; then README_ARG=(--readme docs/benchmarks.md); fi
python3 bench/report.py --results "$RESULTS" --machine "$MACHINE" --out "$OUT" "${README_ARG[@]}"
log "done: $OUT/results.md"
