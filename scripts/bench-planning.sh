#!/usr/bin/env bash
# Benchmark (not a test): server-side scan planning against PyIceberg's own planning, on
# SeaweedFS with STS and the release build (bench/planning.py says what it measures).
# MANIFESTS=1000 FILES_PER_MANIFEST=100 by default (building that table takes a few minutes).
# Needs wrk (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
profile=${PROFILE:-release}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --profile "$profile" --quiet
venv=$(scripts/python-env.sh)
out=$(mktemp -d /tmp/floe-bench-planning.XXXX)
"$venv/bin/python" bench/planning.py "$CARGO_TARGET_DIR/$profile/floe" "$out" "${MANIFESTS:-1000}" "${FILES_PER_MANIFEST:-100}" | tee "$out/report.txt"
echo "logs in $out" >&2
