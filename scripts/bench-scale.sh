#!/usr/bin/env bash
# Benchmark (not a test): a million tables on sled and on PostgreSQL, next to a 100-table catalog
# (bench/scale.py, bench/populate.rs). Needs wrk (installed with apt-get when missing), the local
# PostgreSQL (FLOE_TEST_POSTGRES_URL) and about 10 GB of disk; takes about half an hour.
# SCALE_STORES=postgres (or sled) runs one store only.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
# PROFILE=callgrind runs the same code with line tables (and shares the callgrind build).
profile=${PROFILE:-release}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --profile "$profile" --quiet --bin floe --example populate
venv=$(scripts/python-env.sh)
out=$(mktemp -d "${SCALE_DIR:-/tmp}/floe-bench-scale.XXXX")
"$venv/bin/python" bench/scale.py "$CARGO_TARGET_DIR/$profile/floe" "$CARGO_TARGET_DIR/$profile/examples/populate" \
  "${FLOE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}" "$out" | tee "$out/report.txt"
echo "raw output in $out (delete it when done: it holds the catalogs)" >&2
