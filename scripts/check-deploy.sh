#!/usr/bin/env bash
# Checks the Kubernetes manifests in deploy/kubernetes/: renders the base and every overlay with
# kustomize (`kubectl kustomize`), validates every object against the Kubernetes schemas
# (kubernetes-validate from PyPI, --strict: unknown fields are errors), and runs the frontdoor
# configuration each ConfigMap carries through `frontdoor check-config`.
#
#   scripts/check-deploy.sh [FRONTDOOR_BINARY]   (default target/debug/frontdoor)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/debug/frontdoor}"
[ -x "$BIN" ] || cargo build --bin frontdoor

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
# Debian's kubernetes-client (kubectl 1.20) when no kubectl is installed: the manifests keep
# to the kustomize features it knows.
if ! command -v kubectl >/dev/null 2>&1; then
  $SUDO apt-get install -y --no-install-recommends kubernetes-client >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends kubernetes-client; }
fi
# kubernetes-validate is on PyPI only; a fresh Debian has no pip until python3-pip.
if ! python3 -c "import kubernetes_validate" 2>/dev/null; then
  python3 -m pip --version >/dev/null 2>&1 \
    || $SUDO apt-get install -y --no-install-recommends python3-pip >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends python3-pip; }
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages kubernetes-validate
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# The environment each variant's Deployment gives the config (secrets stand in for real ones).
declare -A STORE=(
  [base]="sqlite:$WORK/frontdoor.db"
  [overlays/postgres]="postgres://frontdoor:secret@postgres.default.svc:5432/frontdoor"
)
for variant in base overlays/postgres; do
  out="$WORK/$(echo "$variant" | tr / -).yaml"
  echo "== kustomize deploy/kubernetes/$variant"
  kubectl kustomize "deploy/kubernetes/$variant" > "$out" 2> "$WORK/kustomize.err" \
    || { cat "$WORK/kustomize.err" >&2; exit 1; }
  python3 -m kubernetes_validate --strict --quiet "$out"
  # Every kind the variant must have.
  for kind in ConfigMap Deployment Service PodDisruptionBudget; do
    grep -q "^kind: $kind\$" "$out" || { echo "deploy/kubernetes/$variant: no $kind" >&2; exit 1; }
  done
  python3 - "$out" "$WORK/frontdoor.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
[cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "frontdoor-config"]
open(sys.argv[2], "w").write(cm["data"]["frontdoor.yaml"])
PY
  echo "== frontdoor check-config (the ConfigMap of $variant)"
  FRONTDOOR_STORE="${STORE[$variant]}" "$BIN" check-config --config "$WORK/frontdoor.yaml"
done
echo "deploy/kubernetes: every manifest valid, every config accepted"
