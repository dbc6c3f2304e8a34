#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit/integration tests (nextest; the PostgreSQL
# store's tests use the local server on 127.0.0.1:5432, FLOE_TEST_POSTGRES_URL), then the
# end-to-end tests with real clients (PyIceberg, DuckDB, Spark) against the real binary and real
# storage (SeaweedFS with STS, Azurite, a GCS emulator) and two replicas on PostgreSQL, and the
# quickstart.
# Build output and the Python venv live under ~/.cache/floe so later runs reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
export CARGO_TERM_COLOR=never
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
step "cargo build"
cargo build --quiet
step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --quiet
fi
step "Python environment"
venv=$(scripts/python-env.sh)
step "Node tools (Azurite)"
export TEST_NODE_DIR=$(scripts/node-env.sh)
step "Spark environment (Iceberg Java client)"
export TEST_SPARK_DIR=$(scripts/spark-env.sh)
step "end-to-end tests (PyIceberg, DuckDB, Spark; SeaweedFS STS, Azurite, PostgreSQL replicas)"
TEST_FLOE_BIN="$CARGO_TARGET_DIR/debug/floe" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/e2e
step "quickstart"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
TEST_FLOE_BIN="$CARGO_TARGET_DIR/debug/floe" QUICKSTART_ONCE=1 FLOE_LISTEN="127.0.0.1:$port" scripts/quickstart.sh >"$log" 2>&1 ||
  { cat "$log"; exit 1; }
grep "PyIceberg wrote" "$log"
step "done"
