#!/usr/bin/env bash
# Benchmark (not a test): the release build of Floe over loopback, driven by wrk.
# load-table at 1/8/64 connections, create-table rate, commits uncontended and 8 writers on one
# table (with a check that every acknowledged commit is in the final metadata), and nginx (one
# worker) serving a file the size of a load-table response as this machine's ceiling, at 8 and 64
# connections, beside load-table at the same counts on a Floe with one worker too (the report gives
# its share of nginx's rate and its p99 against nginx's; the default Floe, a worker per core,
# shares this machine's two cores with wrk's two threads, which lengthens its tail).
# Needs wrk and nginx-light (installed with apt-get when missing). DURATION=10s by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe/target}
# PROFILE=callgrind runs the same code with line tables (and shares the callgrind build).
profile=${PROFILE:-release}
duration=${DURATION:-10s}
command -v wrk >/dev/null && command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null; }
cargo build --profile "$profile" --quiet
venv=$(scripts/python-env.sh)
out=$(mktemp -d /tmp/floe-bench.XXXX)
chmod 755 "$out"   # nginx's worker runs as www-data
port=18555; nginx_port=18556; one_port=18557
floe_pid=; one_pid=
cleanup() {
  kill $floe_pid $one_pid 2>/dev/null || true
  [ -f "$out/nginx.pid" ] && kill "$(cat "$out/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
# start_floe PORT DATA_DIR [ENV...]: starts Floe, waits for it, prepares the bench tables;
# sets floe_started (its pid), BENCH_TOKEN, tables and meta.
start_floe() {
  local port=$1 data=$2; shift 2
  env "$@" FLOE_ROOT_CLIENT_ID=bench FLOE_ROOT_CLIENT_SECRET=bench-secret-0123456 FLOE_LOG=warn \
    "$CARGO_TARGET_DIR/$profile/floe" serve --listen 127.0.0.1:$port --data-dir "$data" > "$data.log" 2>&1 &
  floe_started=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/health/ready >/dev/null && break; sleep 0.1; done
  meta=$("$venv/bin/python" bench/prepare.py http://127.0.0.1:$port bench bench-secret-0123456 "$out")
  export BENCH_TOKEN=$(echo "$meta" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local prefix=$(echo "$meta" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["prefix"])')
  tables=http://127.0.0.1:$port/v1/$prefix/namespaces/bench/tables
}

# Floe with one worker, as nginx runs, is the like-for-like comparison on this machine, whose two
# cores also run wrk's two threads (Floe's default is a worker per core). Its bench table is
# also the file nginx serves.
start_floe $one_port "$out/one-worker" FLOE_WORKERS=1
one_pid=$floe_started
cat > "$out/nginx.conf" <<NGINX
worker_processes 1; pid $out/nginx.pid; error_log $out/nginx.err; daemon on;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$nginx_port; root $out; } }
NGINX
nginx -c "$out/nginx.conf"
sleep 0.5
echo "running wrk ($duration per run)..." >&2
wrk -t2 -c8 -d$duration --latency http://127.0.0.1:$nginx_port/load_table.json > "$out/nginx_c8.txt"
wrk -t2 -c64 -d$duration --latency http://127.0.0.1:$nginx_port/load_table.json > "$out/nginx_c64.txt"
wrk -t2 -c8 -d$duration --latency -s bench/load_table.lua "$tables/hot" > "$out/load_1w_c8.txt"
wrk -t2 -c64 -d$duration --latency -s bench/load_table.lua "$tables/hot" > "$out/load_1w_c64.txt"
kill $one_pid; wait $one_pid 2>/dev/null || true; one_pid=
kill "$(cat "$out/nginx.pid")"; rm -f "$out/nginx.pid"
start_floe $port "$out/data"
floe_pid=$floe_started
wrk -t1 -c1 -d$duration --latency -s bench/load_table.lua "$tables/hot" > "$out/load_c1.txt"
wrk -t2 -c8 -d$duration --latency -s bench/load_table.lua "$tables/hot" > "$out/load_c8.txt"
wrk -t2 -c64 -d$duration --latency -s bench/load_table.lua "$tables/hot" > "$out/load_c64.txt"
wrk -t2 -c8 -d$duration --latency -s bench/create_table.lua "$tables" > "$out/create_c8.txt"
rss_before=$(ps -o rss= -p $floe_pid | tr -d ' ')
wrk -t1 -c1 -d$duration --latency -s bench/commit.lua "$tables/solo" > "$out/commit_solo_c1.txt"
BENCH_SPREAD=1 wrk -t8 -c8 -d$duration --latency -s bench/commit.lua "$tables/c" > "$out/commit_own_c8.txt"
wrk -t8 -c8 -d$duration --latency -s bench/commit.lua "$tables/shared" > "$out/commit_shared_c8.txt"
rss_mid=$(ps -o rss= -p $floe_pid | tr -d ' ')
wrk -t8 -c8 -d$duration -s bench/commit.lua "$tables/shared" > "$out/commit_more_c8.txt"
rss_after=$(ps -o rss= -p $floe_pid | tr -d ' ')
"$venv/bin/python" bench/appenders.py "$tables/appended" "$BENCH_TOKEN" "${duration%s}" 8 > "$out/appenders.txt"
echo "$meta" | "$venv/bin/python" -c "
import json,sys; m=json.load(sys.stdin); m.pop('token')
m.update(rss_kb=[$rss_before, $rss_mid, $rss_after])
json.dump(m, open('$out/meta.json','w'))"
BENCH_TABLES=$tables "$venv/bin/python" bench/report.py "$out" | tee "$out/report.txt"
tee -a "$out/report.txt" < "$out/appenders.txt"
echo "raw wrk output in $out" >&2
