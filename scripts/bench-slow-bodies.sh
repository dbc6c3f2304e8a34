#!/usr/bin/env bash
# Benchmark (not a test): slow bodies (bench/slow_bodies.py). SOCKETS unauthenticated sockets
# (1,100 by default, from 11 loopback addresses) send the headers of a token request and part of
# its body, then go quiet, for SECONDS (20); another tenant loads its table meanwhile and
# /health/ready is asked every 100 ms. With the default configuration. FLOE_BIN picks the binary
# (default: the release build with line tables, profile `callgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
if [ -z "${FLOE_BIN:-}" ]; then
  cargo build --profile callgrind --quiet
  FLOE_BIN="$CARGO_TARGET_DIR/callgrind/floe"
fi
venv=$(scripts/python-env.sh)
out=$(mktemp -d /tmp/floe-slow.XXXX)
cd bench && "$venv/bin/python" slow_bodies.py "$FLOE_BIN" "$out" "${SOCKETS:-1100}" "${SECONDS_UNDER_ATTACK:-20}"
