"""Creates the benchmark's tables through PyIceberg and prints the token, prefix and the size of a
load-table response. Usage: prepare.py URI ROOT_ID ROOT_SECRET OUT_DIR. BENCH_SNAPSHOTS (10 by
default) is how many appends the hot table gets: 10 make a 10 KB answer, 110 about 100 KB."""

import json
import os
import sys
import urllib.request

import pyarrow as pa
from pyiceberg.catalog import load_catalog

uri, cid, secret, out = sys.argv[1:5]
cat = load_catalog("bench", type="rest", uri=uri, warehouse="demo", credential=f"{cid}:{secret}",
                   **{"oauth2-server-uri": f"{uri}/v1/oauth/tokens"})
cat.create_namespace("bench")
t = cat.create_table("bench.hot", schema=pa.schema([("id", pa.int64()), ("city", pa.string())]))
for i in range(int(os.environ.get("BENCH_SNAPSHOTS", "10"))):  # ten: a realistic metadata size
    t.append(pa.table({"id": pa.array([i], pa.int64()), "city": pa.array(["x"])}))
for name in ["solo", "shared", "appended"] + [f"c{i}" for i in range(1, 9)]:
    cat.create_table(f"bench.{name}", schema=pa.schema([("id", pa.int64())]))
token = json.load(urllib.request.urlopen(urllib.request.Request(
    f"{uri}/v1/oauth/tokens", data=f"grant_type=client_credentials&client_id={cid}&client_secret={secret}".encode())))["access_token"]
prefix = json.load(urllib.request.urlopen(urllib.request.Request(
    f"{uri}/v1/config?warehouse=demo", headers={"Authorization": f"Bearer {token}"})))["overrides"]["prefix"]
body = urllib.request.urlopen(urllib.request.Request(
    f"{uri}/v1/{prefix}/namespaces/bench/tables/hot", headers={"Authorization": f"Bearer {token}"})).read()
open(f"{out}/load_table.json", "wb").write(body)
print(json.dumps({"token": token, "prefix": prefix, "bytes": len(body)}))
