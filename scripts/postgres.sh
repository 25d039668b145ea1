#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for frontdoor's tests and prints the URL to use, e.g.
#   export FRONTDOOR_TEST_POSTGRES_URL="$(scripts/postgres.sh)"
#
# Usage: scripts/postgres.sh [PORT]   (default: $FRONTDOOR_PG_PORT, else 5432, or the next
#        free port when another server that wants a password holds 5432)
#
# Installs Debian's `postgresql` package when no server binaries are present, initialises a
# cluster under /tmp/frontdoor-pg-PORT owned by the `postgres` user (the current user when
# not root), and starts it listening on 127.0.0.1:PORT only, with trust authentication (no
# password) for the superuser `postgres`. Idempotent: when the server is already running it
# only prints the URL. The cluster trades durability for speed (fsync off): tests only.
# Stop it with: pg_ctl -D /tmp/frontdoor-pg-PORT/data stop (as the cluster's owner).
# Progress goes to stderr; stdout is only the URL.
set -euo pipefail

EXPLICIT_PORT="${1:-${FRONTDOOR_PG_PORT:-}}"
HOST=127.0.0.1

log() { echo "postgres.sh: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

BIN="$(pg_bin || true)"
if [ -z "$BIN" ]; then
  log "installing postgresql"
  $SUDO apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends postgresql >/dev/null; }
  BIN="$(pg_bin)" || { log "no PostgreSQL server binaries after installing postgresql"; exit 1; }
fi

# The server refuses to run as root: as root, the cluster belongs to the `postgres` user.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  as_owner() { "$@"; }
fi

ready() { "$BIN/pg_isready" -q -h "$HOST" -p "$1" -U postgres -d postgres; }

# Accepts connections as postgres without a password: ours, or a compatible one already there.
usable() { PGCONNECT_TIMEOUT=3 "$BIN/psql" -X -q -w "$(url "$1")" -c 'SELECT 1' >/dev/null 2>&1; }

url() { echo "postgres://postgres@$HOST:$1/postgres"; }

# Prints the URL of a usable server on port $1, starting ours there if the port is free;
# fails when another server holds the port and refuses us.
serve_on() {
  local port="$1" base="/tmp/frontdoor-pg-$1" data="/tmp/frontdoor-pg-$1/data"
  if ready "$port"; then
    usable "$port" && { url "$port"; return 0; }
    log "a server on $HOST:$port refuses $(url "$port") without a password"
    return 1
  fi
  mkdir -p "$base"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$base"; fi
  if [ ! -s "$data/PG_VERSION" ]; then
    log "initialising a cluster in $data"
    rm -rf "$data"
    as_owner "$BIN/initdb" --pgdata="$data" --username=postgres --auth-local=trust \
      --auth-host=trust --encoding=UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 \
      || { cat "$base/initdb.log" >&2; exit 1; }
  fi
  log "starting the server on $HOST:$port (log: $base/server.log)"
  # Each test database gets its own pool (up to 16 connections), several tests at a time.
  if ! as_owner "$BIN/pg_ctl" --pgdata="$data" --log="$base/server.log" --wait --timeout=60 \
    --options="-c listen_addresses=$HOST -c port=$port -c unix_socket_directories=$base \
    -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null; then
    tail -n 20 "$base/server.log" >&2 || true
    exit 1
  fi
  for _ in $(seq 1 50); do
    usable "$port" && { url "$port"; return 0; }
    sleep 0.2
  done
  log "the server started but does not accept $(url "$port")"
  tail -n 20 "$base/server.log" >&2 || true
  exit 1
}

if [ -n "$EXPLICIT_PORT" ]; then
  serve_on "$EXPLICIT_PORT" || { log "pick another port: $0 PORT"; exit 1; }
  exit 0
fi
# By default 5432; when another server holds it (say Debian's own cluster, which wants a
# password), the next ports.
for port in $(seq 5432 5441); do
  serve_on "$port" && exit 0
done
log "no usable port in 5432-5441; pick one: $0 PORT"
exit 1
