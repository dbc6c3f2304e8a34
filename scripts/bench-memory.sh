#!/usr/bin/env bash
# Benchmark (not a test): resident memory after CREATES create-tables and as many commits (100k
# operations by default) on sled, with the default caches and with smaller ones (bench/memory.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
# PROFILE=callgrind runs the same code with line tables (and shares the callgrind build).
profile=${PROFILE:-release}
cargo build --profile "$profile" --quiet
venv=$(scripts/python-env.sh)
out=$(mktemp -d /tmp/floe-bench-memory.XXXX)
"$venv/bin/python" bench/memory.py "$CARGO_TARGET_DIR/$profile/floe" "$out" "${CREATES:-50000}" | tee "$out/report.txt"
echo "logs in $out" >&2
