#!/usr/bin/env bash
# Benchmark (not a test): noisy neighbours (bench/tenants.py). One tenant at 64 connections,
# another at one connection and 1,000 requests/s: the quiet tenant's load-table p50/p99 alone and
# beside the noisy one, without a per-tenant rate and with RATE requests/s per tenant
# (limits.tenant_requests_per_sec), and with the noisy tenant on a second Floe process (the
# machine's floor: what sharing only the cores costs). The release build with line tables (profile `callgrind`,
# the same code as release). Needs wrk (installed with apt-get when missing).
# Then overload: 256 connections committing to one table with max_in_flight 1024 and SHED_AT.
# DURATION=20s (shorter runs make the quiet p99 noisy here), RATE=2000 and SHED_AT=16 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --profile callgrind --quiet
venv=$(scripts/python-env.sh)
out=$(mktemp -d /tmp/floe-tenants.XXXX)
"$venv/bin/python" bench/tenants.py "$CARGO_TARGET_DIR/callgrind/floe" "$out" "${DURATION:-20s}" "${RATE:-2000}" "${SHED_AT:-16}"
