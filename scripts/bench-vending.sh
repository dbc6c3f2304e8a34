#!/usr/bin/env bash
# Benchmark (not a test): load-table with and without vended credentials at 1/8/64 connections,
# release build against SeaweedFS with STS, with Floe's STS calls counted per run.
# Needs wrk (installed with apt-get when missing). DURATION=10s by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
# PROFILE=callgrind runs the same code with line tables (and shares the callgrind build).
profile=${PROFILE:-release}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --profile "$profile" --quiet
venv=$(scripts/python-env.sh)
out=$(mktemp -d /tmp/floe-bench-vending.XXXX)
"$venv/bin/python" bench/vending.py "$CARGO_TARGET_DIR/$profile/floe" "$out" "${DURATION:-10s}" | tee "$out/report.txt"
echo "logs in $out" >&2
