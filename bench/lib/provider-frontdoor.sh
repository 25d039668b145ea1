# shellcheck shell=bash
# A frontdoor configured for provider measurements, shared by bench/callgrind.sh and
# bench/rotations.sh. Source it after setting DIR (the scratch directory: the configuration
# and data_dir go there), DATABASE (the PostgreSQL database dropped and created when PG_URL is
# set), BASE (the port base), BIN, ALGORITHM and PG_URL. It sets P_FD, P_ADMIN, FD_URL,
# REDIRECT_URI and FD (the binary on that configuration), writes the configuration (signing keys
# of ALGORITHM, no rate limits, one authenticated route to nowhere) and defines wait_up.
P_FD=$((BASE + 10)); P_ADMIN=$((BASE + 11))
FD_URL="http://127.0.0.1:$P_FD"
REDIRECT_URI=http://127.0.0.1:9999/callback
STORE_LINE=""
if [ -n "${PG_URL:-}" ]; then
  psql -X -q "$PG_URL" -c "DROP DATABASE IF EXISTS $DATABASE" -c "CREATE DATABASE $DATABASE" > /dev/null
  STORE_LINE="store: ${PG_URL%/*}/$DATABASE"
fi
cat > "$DIR/frontdoor.yaml" <<CONF
listen: 127.0.0.1:$P_FD
admin_listen: 127.0.0.1:$P_ADMIN
public_url: $FD_URL
data_dir: $DIR/data
keys: { algorithm: $ALGORITHM }
$STORE_LINE
regulation: { token_rate: { per_second: 0 }, login_rate: { per_second: 0 } }
routes:
  - { host: "*", path_prefix: /, upstream: "http://127.0.0.1:9", policy: authenticated }
CONF
FD="$BIN --config $DIR/frontdoor.yaml"
# Waits up to two minutes (valgrind starts slowly) for the admin listener's /healthz.
wait_up() {
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$P_ADMIN/healthz" >/dev/null && return 0; sleep 0.2; done
  echo "frontdoor did not start" >&2; exit 1
}
