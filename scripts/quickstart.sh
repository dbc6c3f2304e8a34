#!/usr/bin/env bash
# Starts Floe on its embedded default (sled + ./floe-data/warehouse), creates a table with PyIceberg
# and reads it back, then keeps Floe running until Ctrl-C (QUICKSTART_ONCE=1 stops after the
# example). Everything it needs is installed on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
data_dir=${FLOE_DATA_DIR:-./floe-data}
if [ -n "${QUICKSTART_ONCE:-}" ]; then data_dir=$(mktemp -d); fi
listen=${FLOE_LISTEN:-127.0.0.1:8181}
bin=${TEST_FLOE_BIN:-}
if [ -z "$bin" ]; then
  echo "building floe (first build takes a few minutes)..." >&2
  cargo build --quiet
  bin="$CARGO_TARGET_DIR/debug/floe"
fi
venv=$(scripts/python-env.sh)
"$bin" serve --listen "$listen" --data-dir "$data_dir" &
floe_pid=$!
trap 'kill $floe_pid 2>/dev/null; wait $floe_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://$listen/health/ready" >/dev/null && break
  sleep 0.1
done
"$venv/bin/python" examples/pyiceberg_quickstart.py --uri "http://$listen" --credentials-file "$data_dir/root-credentials"
if [ -z "${QUICKSTART_ONCE:-}" ]; then
  echo "Floe keeps running at http://$listen (data in $data_dir); Ctrl-C stops it."
  wait $floe_pid
fi
