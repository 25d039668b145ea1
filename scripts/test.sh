#!/usr/bin/env bash
# Sets up and runs frontdoor's whole test suite on a fresh Debian machine:
# installs the build's system packages, then formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

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
# cmake: pingora's compression dependency builds zlib-ng with it; openssl: test certificates;
# libssl-dev: webauthn-rs (passkeys) links OpenSSL;
# nginx and caddy: the forward-auth tests run frontdoor behind the real servers;
# chromium and chromium-driver: the page tests drive a real headless browser.
# libssl-dev: webauthn-rs (passkeys) links OpenSSL.
apt_install cmake pkg-config openssl libssl-dev nginx caddy chromium chromium-driver fonts-dejavu-core
# fail2ban: an e2e test runs fail2ban-regex with contrib/fail2ban's filter on a log frontdoor
# wrote; prometheus: promtool checks contrib/prometheus/alerts.yml.
apt_install fail2ban prometheus
# Debian starts the packaged services; the tests run their own instances on free ports.
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl stop nginx caddy fail2ban prometheus >/dev/null 2>&1 || true
fi
# A real SMTP server (STARTTLS + AUTH) for the mail tests.
# Debian's python3 gets Debian's package; another python3 first on PATH (pyenv) gets it from PyPI.
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
  if [ "$(command -v python3)" = /usr/bin/python3 ]; then
    apt_install python3-aiosmtpd
  else
    python3 -m pip install --quiet --disable-pip-version-check aiosmtpd \
      || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd
  fi
fi
# A real OpenID Connect provider (the npm package oidc-provider, run by Node.js) for the
# federation tests; its packages are installed from the committed package-lock.json.
command -v node >/dev/null 2>&1 || apt_install nodejs npm
OIDC_PROVIDER_DIR=tests/support/oidc-provider
if [ ! -f "$OIDC_PROVIDER_DIR/node_modules/.package-lock.json" ] \
  || [ "$OIDC_PROVIDER_DIR/package-lock.json" -nt "$OIDC_PROVIDER_DIR/node_modules/.package-lock.json" ]; then
  (cd "$OIDC_PROVIDER_DIR" && npm ci --no-audit --no-fund)
fi

# A PostgreSQL server for the PostgreSQL store's tests (each test creates and drops its own database).
if [ -z "${FRONTDOOR_TEST_POSTGRES_URL:-}" ]; then
  FRONTDOOR_TEST_POSTGRES_URL="$(scripts/postgres.sh)"
fi
export FRONTDOOR_TEST_POSTGRES_URL

echo "== links between the Markdown files"
python3 scripts/check-links.py
echo "== import circles among src/ files"
python3 scripts/import-circles.py src
echo "== promtool check rules"
promtool check rules contrib/prometheus/alerts.yml
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --all-targets -- --test-threads="${FRONTDOOR_TEST_THREADS:-4}"
# The tests inside the vendored Pingora crates that frontdoor's patches add.
echo "== the vendored Pingora crates' tests of their patches"
scripts/vendor-tests.sh
# The Kubernetes manifests: rendered, validated against the schemas, their config checked.
echo "== deploy/kubernetes"
scripts/check-deploy.sh
# Every fuzz target for FRONTDOOR_FUZZ_SECONDS each (default 60; 0 skips); libFuzzer is C++.
apt_install g++
echo "== fuzz (${FRONTDOOR_FUZZ_SECONDS:-60}s per target)"
scripts/fuzz.sh
