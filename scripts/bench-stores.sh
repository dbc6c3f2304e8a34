#!/usr/bin/env bash
# Benchmark (not a test): load-table and commits on sled, PostgreSQL with one replica, and
# PostgreSQL with two replicas, side by side (bench/stores.py). Needs wrk (installed with apt-get
# when missing) and the local PostgreSQL (FLOE_TEST_POSTGRES_URL). DURATION=10 seconds per run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
# PROFILE=callgrind runs the same code with line tables (and shares the callgrind build).
profile=${PROFILE:-release}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --profile "$profile" --quiet
venv=$(scripts/python-env.sh)
out=$(mktemp -d /tmp/floe-bench-stores.XXXX)
"$venv/bin/python" bench/stores.py "$CARGO_TARGET_DIR/$profile/floe" \
  "${FLOE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}" "$out" "${DURATION:-10}" | tee "$out/report.txt"
echo "raw wrk output in $out" >&2
