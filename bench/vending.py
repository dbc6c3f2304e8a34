"""Benchmark of load-table with vended credentials (run by scripts/bench-vending.sh).

Starts SeaweedFS with STS and the release build of Floe with an STS-vending warehouse, creates a
table through PyIceberg (with vended credentials only), then drives load-table with wrk at 1, 8
and 64 connections with and without `X-Iceberg-Access-Delegation: vended-credentials`, counting
Floe's STS calls (from /metrics) over each run. Usage: vending.py FLOE_BINARY OUT_DIR DURATION"""

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

import wrk_output  # noqa: E402

import pyarrow as pa  # noqa: E402
from pyiceberg.catalog import load_catalog  # noqa: E402

from conftest import free_port  # noqa: E402
from seaweed import ACCESS_KEY, READ_ROLE, SECRET_KEY, WRITE_ROLE, SeaweedS3  # noqa: E402

binary, out, duration = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(var, None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

s3 = SeaweedS3(sts=True)
port = free_port()
uri = f"http://127.0.0.1:{port}"
(out / "floe.toml").write_text(f"""
[[warehouses]]
name = "lake"
storage = {{ kind = "s3", bucket = "{s3.bucket}", key_prefix = "wh", region = "us-east-1", endpoint = "{s3.endpoint}", path_style = true, sts_endpoint = "{s3.endpoint}", read_role_arn = "{READ_ROLE}", write_role_arn = "{WRITE_ROLE}" }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
""")
env = {**os.environ, "FLOE_ROOT_CLIENT_ID": "bench", "FLOE_ROOT_CLIENT_SECRET": "bench-secret-0123456", "FLOE_LOG": "warn"}
floe = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(out / "data"),
                         "--config", str(out / "floe.toml")], env=env,
                        stdout=open(out / "floe.log", "w"), stderr=subprocess.STDOUT)
try:
    wrk_output.wait_ready(uri)
    cat = load_catalog("bench", type="rest", uri=uri, warehouse="lake", credential="bench:bench-secret-0123456",
                       **{"oauth2-server-uri": f"{uri}/v1/oauth/tokens"})
    cat.create_namespace("bench")
    t = cat.create_table("bench.hot", schema=pa.schema([("id", pa.int64()), ("city", pa.string())]))
    for i in range(10):
        t.append(pa.table({"id": pa.array([i], pa.int64()), "city": pa.array(["x"])}))
    token = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{uri}/v1/oauth/tokens",
        data=b"grant_type=client_credentials&client_id=bench&client_secret=bench-secret-0123456")))["access_token"]
    prefix = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{uri}/v1/config?warehouse=lake", headers={"Authorization": f"Bearer {token}"})))["overrides"]["prefix"]
    url = f"{uri}/v1/{prefix}/namespaces/bench/tables/hot"
    lua = str(Path(__file__).resolve().parent / "load_table.lua")

    def sts_calls():
        text = urllib.request.urlopen(f"{uri}/metrics").read().decode()
        m = re.search(r"^floe_sts_calls_total(?:\{[^}]*\})? (\d+)", text, re.M)
        return int(m.group(1)) if m else 0

    def run(conns, delegation):
        before = sts_calls()
        wrk_env = {**os.environ, "BENCH_TOKEN": token, "BENCH_DELEGATION": delegation}
        text = subprocess.run(["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{duration}", "--latency", "-s", lua, url],
                              env=wrk_env, capture_output=True, text=True, check=True).stdout
        return {**wrk_output.parse(text), "sts": sts_calls() - before}

    # Warm the session cache first, as a client's first load would.
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}",
                                               "X-Iceberg-Access-Delegation": "vended-credentials"})
    body = json.load(urllib.request.urlopen(req))
    assert body["storage-credentials"][0]["config"]["s3.session-token"]
    print(f"{'run':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'STS calls':>11}")
    for conns in (1, 8, 64):
        for label, delegation in (("plain", ""), ("vended", "vended-credentials")):
            r = run(conns, delegation)
            print(f"{f'load-table {label} c{conns}':<28}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
                  f"{r['non2xx']:>9}{r['sts']:>11}", flush=True)
finally:
    floe.terminate()
    floe.wait()
    s3.stop()
