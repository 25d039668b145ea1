#!/usr/bin/env bash
# The soak: two frontdoor nodes (release build) on one PostgreSQL, with shared key files, behind
# nothing, in front of a static nginx upstream; `examples/soak` drives mixed traffic at both
# (form logins, client_credentials grants, login-check + refresh across nodes, proxied requests
# with sessions and with an Api-Token) for SOAK_SECONDS (default 600). RSS of both nodes is
# sampled every 10 s; the report compares the end with the sample after warm-up (60 s).
#
#   bench/soak.sh [SECONDS]
#
# Writes $OUT/report.md (default docs/bench/soak.md) and prints it. Needs nginx, curl, jq and
# PostgreSQL (scripts/postgres.sh installs and starts one).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SECONDS_TOTAL="${1:-${SOAK_SECONDS:-600}}"
WARMUP="${SOAK_WARMUP:-60}"
OUT="${OUT:-docs/bench}"
WORK="$(mktemp -d /tmp/frontdoor-soak.XXXXXX)"
BASE="${SOAK_PORT_BASE:-19500}"
P_UP=$((BASE + 1)); P_A=$((BASE + 10)); P_A_ADMIN=$((BASE + 11)); P_B=$((BASE + 20)); P_B_ADMIN=$((BASE + 21))
log() { echo "soak: $*" >&2; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ "${SOAK_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${SOAK_SKIP_BUILD:-0}" != 1 ]; then
  log "building (release frontdoor, soak driver)"
  cargo build --release --bin frontdoor >&2
  cargo build --release --example soak >&2
fi
# SOAK_BIN_DIR=target/debug (with SOAK_SKIP_BUILD=1) checks the script itself quickly.
BIN_DIR="${SOAK_BIN_DIR:-target/release}"
BIN="$BIN_DIR/frontdoor"
DRIVER="$BIN_DIR/examples/soak"

PG_URL="${SOAK_POSTGRES_URL:-$(scripts/postgres.sh)}"
DB="fd_soak_$$"
psql -X -q "$PG_URL" -c "CREATE DATABASE $DB" >/dev/null
STORE="${PG_URL%/*}/$DB"

mkdir -p "$WORK/www/soak" "$WORK/logs" "$WORK/tmp" "$WORK/keys"
# nginx workers run as an unprivileged user when started as root.
chmod 755 "$WORK"
head -c 2048 /dev/zero | tr '\0' 'x' > "$WORK/www/soak/page"
cp "$WORK/www/soak/page" "$WORK/www/soak/api"
chmod -R a+rX "$WORK/www"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp;
  fastcgi_temp_path $WORK/tmp; uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$P_UP; root $WORK/www; default_type text/plain; }
}
CONF
nginx -p "$WORK" -e "$WORK/logs/nginx.err" -c "$WORK/nginx.conf"

node_config() { # PORT ADMIN NAME
  cat <<CONF
listen: 127.0.0.1:$1
admin_listen: 127.0.0.1:$2
public_url: http://127.0.0.1:$1
data_dir: $WORK/$3
store: $STORE
keys: { dir: $WORK/keys }
# The load comes from one address (127.0.0.1): no per-address rate limits here.
regulation: { token_rate: { per_second: 0 }, login_rate: { per_second: 0 } }
routes:
  - { host: "*", path_prefix: /, upstream: "http://127.0.0.1:$P_UP", policy: authenticated }
CONF
}
node_config "$P_A" "$P_A_ADMIN" a > "$WORK/a.yaml"
node_config "$P_B" "$P_B_ADMIN" b > "$WORK/b.yaml"
wait_up() { for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.1; done; log "node on admin :$1 did not start"; exit 1; }
# Node A first: it generates the shared keys; B reads them.
"$BIN" --config "$WORK/a.yaml" serve > "$WORK/logs/a.log" 2>&1 & PID_A=$!; PIDS+=("$PID_A"); wait_up "$P_A_ADMIN"
"$BIN" --config "$WORK/b.yaml" serve > "$WORK/logs/b.log" 2>&1 & PID_B=$!; PIDS+=("$PID_B"); wait_up "$P_B_ADMIN"

FD="$BIN --config $WORK/a.yaml"
PASSWORD="soak-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$PASSWORD" | $FD users add --email soak@example.com --name Soak --password-stdin >/dev/null
read -r CC_ID CC_SECRET < <($FD apps create --name soak-cc --grant client_credentials --json | jq -r '"\(.client_id) \(.client_secret)"')
API_TOKEN="$($FD tokens create --user soak@example.com --name soak --json | jq -r .token)"

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "t_s,rss_a_kib,rss_b_kib" > "$WORK/rss.csv"
(
  t=0
  while kill -0 "$PID_A" 2>/dev/null && kill -0 "$PID_B" 2>/dev/null; do
    echo "$t,$(rss "$PID_A"),$(rss "$PID_B")" >> "$WORK/rss.csv"
    sleep 10; t=$((t + 10))
  done
) & PIDS+=($!)

log "driving both nodes for ${SECONDS_TOTAL}s"
set +e
"$DRIVER" --nodes "http://127.0.0.1:$P_A,http://127.0.0.1:$P_B" --seconds "$SECONDS_TOTAL" \
  --email soak@example.com --password "$PASSWORD" --client-id "$CC_ID" --client-secret="$CC_SECRET" \
  --api-token "$API_TOKEN" --report "$WORK/driver.json"
DRIVER_RC=$?
set -e
echo "$SECONDS_TOTAL,$(rss "$PID_A"),$(rss "$PID_B")" >> "$WORK/rss.csv"

WARM_ROW="$(awk -F, -v w="$WARMUP" 'NR > 1 && $1 >= w {print; exit}' "$WORK/rss.csv")"
END_ROW="$(tail -n 1 "$WORK/rss.csv")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b / a }'; }
RA="$(ratio "$(cut -d, -f2 <<< "$WARM_ROW")" "$(cut -d, -f2 <<< "$END_ROW")")"
RB="$(ratio "$(cut -d, -f3 <<< "$WARM_ROW")" "$(cut -d, -f3 <<< "$END_ROW")")"
mkdir -p "$OUT"
{
  echo "# Soak: two nodes on one PostgreSQL, ${SECONDS_TOTAL} s of mixed load"
  echo
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) at commit $(git rev-parse --short HEAD) on $(nproc) cores, by \`bench/soak.sh\`."
  echo
  echo "| kind | answered as expected |"
  echo "|---|---|"
  jq -r '.ok | to_entries[] | "| \(.key) | \(.value) |"' "$WORK/driver.json"
  echo
  echo "Errors (anything but the expected status; 0 = no answer): $(jq -r '[.errors[].count] | add // 0' "$WORK/driver.json")"
  jq -r '.errors[] | "- \(.kind): status \(.status) × \(.count)"' "$WORK/driver.json"
  echo
  echo "| RSS (KiB) | after warm-up (${WARMUP} s) | end | end / warm-up |"
  echo "|---|---|---|---|"
  echo "| node A | $(cut -d, -f2 <<< "$WARM_ROW") | $(cut -d, -f2 <<< "$END_ROW") | $RA |"
  echo "| node B | $(cut -d, -f3 <<< "$WARM_ROW") | $(cut -d, -f3 <<< "$END_ROW") | $RB |"
  echo
  echo "RSS every 10 s: \`t_s,rss_a_kib,rss_b_kib\`"
  echo
  echo '```'
  cat "$WORK/rss.csv"
  echo '```'
} > "$OUT/soak.md"
cat "$OUT/soak.md"
psql -X -q "$PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || true
exit "$DRIVER_RC"
