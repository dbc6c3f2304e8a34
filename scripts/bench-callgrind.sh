#!/usr/bin/env bash
# Benchmark (not a test): instructions per warm load-table, counted by callgrind on the release
# build with line tables (cargo profile `callgrind`, so `callgrind_annotate` names functions).
# Floe runs under valgrind; after WARM loads of one table the counters are zeroed, LOADS
# more loads run, and the dumped total divided by LOADS is the figure (every thread counted, so
# background tasks add a little). Needs valgrind (installed with apt-get when missing).
# LOADS=1000 and WARM=50 by default; prints "instructions per load-table: N". STORE=postgres runs
# it on a fresh database on the local PostgreSQL (FLOE_TEST_POSTGRES_URL) instead of sled.
# ROUTE=create counts create-table instead: each request creates a new table (unique name) in the
# same namespace, so the figure includes writing its first metadata file and the store's commit.
# ROUTE=commit counts commits to the loaded table (each sets one property: a new metadata file
# written, the pointer swapped, the new metadata answered).
# BENCH_SNAPSHOTS=110 gives the loaded table about 100 KB of metadata (10 by default: 10 KB).
# After the figure it prints where the instructions went (bench/callgrind_costs.py): the costliest
# functions, and memcpy and memset per request with their callers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
loads=${LOADS:-1000}
warm=${WARM:-50}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --profile callgrind --quiet
venv=$(scripts/python-env.sh)
out=$(mktemp -d /tmp/floe-callgrind.XXXX)
port=18557
store_env=()
config=()
if [ "${STORE:-sled}" = postgres ]; then
  # PostgreSQL gets no demo warehouse of its own (a directory is one machine's): it is configured.
  mkdir -p "$out/warehouse"
  printf '[[warehouses]]\nname = "demo"\nstorage = { kind = "local", root = "file://%s" }\n' "$out/warehouse" > "$out/floe.toml"
  config=(--config "$out/floe.toml")
  admin=${FLOE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
  db=floe_callgrind_$$
  psql "$admin" -qc "CREATE DATABASE $db"
  store_env=(FLOE_STORE=postgres "FLOE_POSTGRES__URL=${admin%/*}/$db" "FLOE_MASTER_KEY=$(head -c 32 /dev/urandom | base64)")
fi
env "${store_env[@]}" FLOE_ROOT_CLIENT_ID=bench FLOE_ROOT_CLIENT_SECRET=bench-secret-0123456 FLOE_LOG=warn FLOE_WORKERS=1 \
  valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.%p" \
  "$CARGO_TARGET_DIR/callgrind/floe" serve --listen 127.0.0.1:$port --data-dir "$out/data" "${config[@]}" \
  > "$out/floe.log" 2>&1 &
floe_pid=$!
cleanup() {
  kill $floe_pid 2>/dev/null || true
  if [ -n "${db:-}" ]; then wait $floe_pid 2>/dev/null || true; psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; fi
}
trap cleanup EXIT
for _ in $(seq 600); do curl -sf http://127.0.0.1:$port/health/ready >/dev/null && break; sleep 0.5; done
uri=http://127.0.0.1:$port
meta=$("$venv/bin/python" bench/prepare.py $uri bench bench-secret-0123456 "$out")
token=$(echo "$meta" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
prefix=$(echo "$meta" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["prefix"])')
answer=$(echo "$meta" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')
table=$uri/v1/$prefix/namespaces/bench/tables/hot
route=${ROUTE:-load}
load() {
  "$venv/bin/python" - "$table" "$token" "$1" "$route" <<'PY'
import sys, http.client, json, urllib.parse, uuid
url, token, n, route = urllib.parse.urlsplit(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection(url.hostname, url.port)
headers = {"Authorization": f"Bearer {token}"}
schema = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": True}]}
for _ in range(n):
    if route == "create":
        body = json.dumps({"name": "t_" + uuid.uuid4().hex, "schema": schema})
        conn.request("POST", url.path.rsplit("/", 1)[0], body=body, headers={**headers, "Content-Type": "application/json"})
    elif route == "commit":
        body = json.dumps({"requirements": [], "updates": [{"action": "set-properties", "updates": {"bench.commit": uuid.uuid4().hex}}]})
        conn.request("POST", url.path, body=body, headers={**headers, "Content-Type": "application/json"})
    else:
        conn.request("GET", url.path, headers=headers)
    r = conn.getresponse(); r.read()
    assert r.status == 200, (r.status, r.read())
PY
}
load "$warm"
callgrind_control -z $floe_pid >/dev/null
load "$loads"
callgrind_control -d $floe_pid >/dev/null
sleep 1
total=$(cat "$out"/callgrind.$floe_pid.* | awk '/^totals:/ {s += $2} END {print s}')
case $route in create) what=create-table ;; commit) what=commit ;; *) what=load-table ;; esac
echo "instructions per $what: $(( total / loads )) (callgrind, $loads warm requests, release build, ${STORE:-sled}, a $answer-byte load-table answer)"
"$venv/bin/python" bench/callgrind_costs.py "$loads" "$out"/callgrind.$floe_pid.*
echo "raw output in $out (callgrind_annotate $out/callgrind.$floe_pid.1 shows where)" >&2
