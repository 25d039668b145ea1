#!/usr/bin/env bash
# Sets up and runs frontdoor's embedded default on a fresh Debian machine:
#   - installs the build's system packages (cmake, pkg-config) when missing,
#   - builds the release binary and the demo upstream app,
#   - starts the demo upstream on 127.0.0.1:8081 (stopped again when this script exits),
#   - creates the demo user demo@example.com (once; kept in ./data),
#   - runs `frontdoor serve --config config/frontdoor.yaml` in the foreground.
# Open http://localhost:8080/ and sign in. Ctrl-C stops everything.
#
# Environment: DEMO_PASSWORD (default demo-password) is the password given to the demo user
# when it is created; a user created by an earlier run keeps its password.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=config/frontdoor.yaml
UPSTREAM_ADDR=127.0.0.1:8081
DEMO_EMAIL=demo@example.com
DEMO_PASSWORD="${DEMO_PASSWORD:-demo-password}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/release/frontdoor"
UPSTREAM_BIN="$TARGET_DIR/release/frontdoor-demo-upstream"

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; }
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust from https://rustup.rs and run this script again" >&2
  exit 1
fi
if command -v dpkg >/dev/null 2>&1; then
  # cmake: pingora's compression dependency builds zlib-ng with it.
  apt_install cmake pkg-config
  # A C toolchain for the linker and the bundled SQLite, when the machine has none.
  command -v cc >/dev/null 2>&1 || apt_install build-essential
fi

echo "== cargo build --release (the first build takes several minutes)"
cargo build --release -p frontdoor --bin frontdoor -p frontdoor-demo-upstream --bins

UPSTREAM_PID=""
FRONTDOOR_PID=""
cleanup() {
  if [ -n "$FRONTDOOR_PID" ] && kill -0 "$FRONTDOOR_PID" 2>/dev/null; then
    kill -INT "$FRONTDOOR_PID" 2>/dev/null || true
    wait "$FRONTDOOR_PID" 2>/dev/null || true
  fi
  if [ -n "$UPSTREAM_PID" ] && kill -0 "$UPSTREAM_PID" 2>/dev/null; then
    kill "$UPSTREAM_PID" 2>/dev/null || true
    wait "$UPSTREAM_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== starting the demo upstream on http://$UPSTREAM_ADDR"
"$UPSTREAM_BIN" "$UPSTREAM_ADDR" &
UPSTREAM_PID=$!
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/${UPSTREAM_ADDR%:*}/${UPSTREAM_ADDR#*:}") 2>/dev/null; then break; fi
  if ! kill -0 "$UPSTREAM_PID" 2>/dev/null; then
    echo "the demo upstream did not start (is $UPSTREAM_ADDR already in use?)" >&2
    exit 1
  fi
  sleep 0.1
done

echo "== demo user"
if out=$(printf '%s\n' "$DEMO_PASSWORD" | "$BIN" --config "$CONFIG" users add \
  --email "$DEMO_EMAIL" --name "Demo User" --groups wiki,ops --roles ROLE_USER,ROLE_ADMIN \
  --password-stdin 2>&1); then
  echo "$out"
  CREATED=1
elif grep -q "already exists" <<<"$out"; then
  CREATED=0
else
  echo "$out" >&2
  exit 1
fi

echo
echo "  frontdoor:  http://localhost:8080/        (public page: http://localhost:8080/public/)"
echo "  admin:      http://127.0.0.1:9090/metrics  /healthz  /readyz"
if [ "$CREATED" -eq 1 ]; then
  echo "  sign in as: $DEMO_EMAIL / $DEMO_PASSWORD"
else
  echo "  sign in as: $DEMO_EMAIL (created by an earlier run, with the password given then;"
  echo "              the default is demo-password; remove ./data to start over)"
fi
echo "  Ctrl-C stops frontdoor and the demo upstream."
echo

"$BIN" serve --config "$CONFIG" &
FRONTDOOR_PID=$!
wait "$FRONTDOOR_PID"
