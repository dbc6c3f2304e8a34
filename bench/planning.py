"""Benchmark of server-side scan planning (run by scripts/bench-planning.sh).

Starts SeaweedFS with STS and the release build of Floe with an S3 warehouse, builds a table of
MANIFESTS manifests holding FILES_PER_MANIFEST data files each (one fast append each, through
PyIceberg; the data files are named, not written: planning reads only manifests), partitioned by
`part` (one value per manifest) with bounds on `id`, then measures, in one run:
- the time PyIceberg takes to plan (`plan_files()`) a selective scan (`part = 7 and id < ...`) and
  a full scan: planning itself (reading the manifests from S3; its first plan, then again, when
  PyIceberg has kept the manifest list); with `scan-planning-mode=server` against a Floe just
  started (cold), asked again (warm: Floe reuses the answer it rendered), and for the selective
  scan with a new filter each time (warm manifests, nothing rendered reused); and how much of a
  warm plan is Floe's own time (its request histogram);
- plans per second at 8 concurrent clients (raw HTTP, selective plan; the clients in a process
  of their own at nice 19);
- the manifest cache's bytes (`floe_manifest_cache_bytes`) after a full plan;
- load-table of a ten-snapshot table alone and while the 8 planners run (wrk, 8 connections),
  with what the planners got meanwhile.
Usage: planning.py FLOE_BINARY OUT_DIR [MANIFESTS FILES_PER_MANIFEST]"""

import gc
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

import requests  # noqa: E402
import wrk_output  # noqa: E402
from pyiceberg.catalog import load_catalog  # noqa: E402
from pyiceberg.expressions import And, EqualTo, LessThan  # noqa: E402
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat  # noqa: E402
from pyiceberg.partitioning import PartitionField, PartitionSpec  # noqa: E402
from pyiceberg.schema import Schema  # noqa: E402
from pyiceberg.transforms import IdentityTransform  # noqa: E402
from pyiceberg.typedef import Record  # noqa: E402
from pyiceberg.types import IntegerType, LongType, NestedField  # noqa: E402

from conftest import free_port  # noqa: E402
from seaweed import ACCESS_KEY, READ_ROLE, SECRET_KEY, WRITE_ROLE, SeaweedS3  # noqa: E402

binary, out = sys.argv[1], Path(sys.argv[2])
manifests = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
per_manifest = int(sys.argv[4]) if len(sys.argv) > 4 else 100
for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(var, None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

s3 = SeaweedS3(sts=True)
port = free_port()
uri = f"http://127.0.0.1:{port}"
(out / "floe.toml").write_text(f"""
[planning]
manifests_per_task = {manifests * 2}
[[warehouses]]
name = "lake"
storage = {{ kind = "s3", bucket = "{s3.bucket}", key_prefix = "wh", region = "us-east-1", endpoint = "{s3.endpoint}", path_style = true, sts_endpoint = "{s3.endpoint}", read_role_arn = "{READ_ROLE}", write_role_arn = "{WRITE_ROLE}" }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
""")
env = {**os.environ, "FLOE_ROOT_CLIENT_ID": "bench", "FLOE_ROOT_CLIENT_SECRET": "bench-secret-0123456", "FLOE_LOG": "warn"}


def start():
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(out / "data"),
                             "--config", str(out / "floe.toml")], env=env,
                            stdout=open(out / "floe.log", "a"), stderr=subprocess.STDOUT)
    wrk_output.wait_ready(uri)
    return proc


def catalog(**props):
    return load_catalog("bench", type="rest", uri=uri, warehouse="lake", credential="bench:bench-secret-0123456",
                        **{"oauth2-server-uri": f"{uri}/v1/oauth/tokens", **props})


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


floe = start()
try:
    schema = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "part", IntegerType(), required=False))
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="part"))
    cat = catalog()
    cat.create_namespace("bench")
    table = cat.create_table("bench.big", schema=schema, partition_spec=spec)
    # A table of ten snapshots for load-table (the big one's metadata holds a thousand).
    hot = cat.create_table("bench.hot", schema=schema)
    for m in range(10):
        with hot.transaction() as tx:
            with tx.update_snapshot().fast_append() as append:
                append.append_data_file(DataFile.from_args(
                    content=DataFileContent.DATA, file_path=f"{hot.location()}/data/f{m}.parquet",
                    file_format=FileFormat.PARQUET, partition=Record(), record_count=1, file_size_in_bytes=1, spec_id=0))
        hot = cat.load_table("bench.hot")
    started = time.perf_counter()
    for m in range(manifests):
        with table.transaction() as tx:
            with tx.update_snapshot().fast_append() as append:
                for f in range(per_manifest):
                    first = (m * per_manifest + f) * 1000
                    append.append_data_file(DataFile.from_args(
                        content=DataFileContent.DATA, file_path=f"{table.location()}/data/part={m}/f{f}.parquet",
                        file_format=FileFormat.PARQUET, partition=Record(m), record_count=1000,
                        file_size_in_bytes=50_000, value_counts={1: 1000, 2: 1000}, null_value_counts={1: 0, 2: 0},
                        lower_bounds={1: first.to_bytes(8, "little"), 2: m.to_bytes(4, "little")},
                        upper_bounds={1: (first + 999).to_bytes(8, "little"), 2: m.to_bytes(4, "little")},
                        spec_id=0))
        table = cat.load_table("bench.big")
    built = time.perf_counter() - started
    files = manifests * per_manifest
    print(f"table: {manifests} manifests, {files} data files, built in {built:.0f} s", flush=True)

    selective = And(EqualTo("part", 7), LessThan("id", (7 * per_manifest + 10) * 1000))
    scans = {"selective": {"row_filter": selective}, "full": {}}
    rows = []

    def planned(loaded, scan):
        """Times one `plan_files()` of `loaded` with the collector off while it runs, as timeit
        does (loading the big table leaves garbage that would otherwise be collected in the
        next timed call)."""
        gc.disable()
        try:
            return timed(lambda: len(list(loaded.scan(**scan).plan_files())))
        finally:
            gc.enable()

    def plan_with(c, scan):
        loaded = c.load_table("bench.big")  # not timed: both ways load the table first
        return planned(loaded, scan)

    def median_of(runs, c, scan):
        loaded = c.load_table("bench.big")
        done = [planned(loaded, scan) for _ in range(runs)]
        return statistics.median(t for t, _ in done), done[0][1]

    warm_runs = {"selective": 20, "full": 3}
    own = catalog()
    for name, scan in scans.items():
        took, n = plan_with(own, scan)
        rows.append((f"{name}: PyIceberg plans itself (S3), first", took, n))
        rows.append((f"{name}: PyIceberg plans itself, again (median of 3)", *median_of(3, own, scan)))
    # Cold: a Floe just started has no manifest in memory.
    floe.terminate()
    floe.wait()
    floe = start()
    server = catalog(**{"scan-planning-mode": "server"})
    for name, scan in scans.items():
        took, n = plan_with(server, scan)
        rows.append((f"{name}: Floe plans, cold", took, n))
        runs = warm_runs[name]
        rows.append((f"{name}: Floe, warm, asked again (median of {runs})", *median_of(runs, server, scan)))
    # Warm manifests, but a filter not planned before each time: nothing rendered is reused.
    loaded = server.load_table("bench.big")
    fresh = [planned(loaded, {"row_filter": And(EqualTo("part", 7), LessThan("id", (7 * per_manifest + 10) * 1000 + k))})
             for k in range(1, 21)]
    rows.append(("selective: Floe, warm, a new filter (median of 20)", statistics.median(t for t, _ in fresh), fresh[0][1]))
    print(f"{'plan':<56}{'seconds':>10}{'files':>9}")
    for label, took, n in rows:
        print(f"{label:<56}{took:>10.4f}{n:>9}", flush=True)
    for name in scans:
        first = next(t for label, t, _ in rows if label.startswith(f"{name}: PyIceberg plans itself (S3), first"))
        again = next(t for label, t, _ in rows if label.startswith(f"{name}: PyIceberg plans itself, again"))
        cold = next(t for label, t, _ in rows if label.startswith(f"{name}: Floe plans, cold"))
        for label, t, _ in rows:
            if label.startswith(f"{name}: Floe, warm"):
                print(f"{label}: {first / t:.1f}x faster than PyIceberg's first, {again / t:.1f}x than its again")
        print(f"{name}: Floe cold: {first / cold:.1f}x faster than PyIceberg's first, {again / cold:.1f}x than its again")

    def plan_route_seconds():
        """The plan route's time in Floe so far (the request histogram's sum and count)."""
        text = urllib.request.urlopen(f"{uri}/metrics").read().decode()
        total, count = 0.0, 0.0
        for line in text.splitlines():
            if 'route="/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan"' in line:
                if line.startswith("floe_http_request_seconds_sum"):
                    total += float(line.rsplit(" ", 1)[1])
                elif line.startswith("floe_http_request_seconds_count"):
                    count += float(line.rsplit(" ", 1)[1])
        return total, count

    # Where a warm selective plan's time goes: Floe's own (its request histogram) against what
    # PyIceberg sees, asked again and with a new filter each time.
    loaded = server.load_table("bench.big")
    for label, filters in (("asked again", [selective] * 20),
                           ("a new filter", [And(EqualTo("part", 7), LessThan("id", (7 * per_manifest + 10) * 1000 + 100 + k))
                                             for k in range(20)])):
        before = plan_route_seconds()
        seen = statistics.median(planned(loaded, {"row_filter": f})[0] for f in filters)
        after = plan_route_seconds()
        inside = (after[0] - before[0]) / max(after[1] - before[1], 1)
        print(f"selective, warm, {label}: PyIceberg sees {seen * 1000:.2f} ms (median of 20), of which Floe's own "
              f"{inside * 1000:.2f} ms (mean)")

    metrics = urllib.request.urlopen(f"{uri}/metrics").read().decode()
    cache = next((float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("floe_manifest_cache_bytes")), 0)
    print(f"manifest cache: {cache / 1e6:.1f} MB for {files} data files = {cache / files * 100_000 / 1e6:.1f} MB per 100,000 files")

    token = requests.post(f"{uri}/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": "bench",
                                                           "client_secret": "bench-secret-0123456"}).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    prefix = requests.get(f"{uri}/v1/config", params={"warehouse": "lake"}, headers=h).json()["overrides"]["prefix"]
    plan_url = f"{uri}/v1/{prefix}/namespaces/bench/tables/big/plan"
    body = {"filter": {"type": "and", "left": {"type": "eq", "term": "part", "value": 7},
                       "right": {"type": "lt", "term": "id", "value": (7 * per_manifest + 10) * 1000}}}

    def load_table(seconds):
        lua = str(Path(__file__).resolve().parent / "load_table.lua")
        text = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", lua,
                               f"{uri}/v1/{prefix}/namespaces/bench/tables/hot"],
                              env={**os.environ, "BENCH_TOKEN": token}, capture_output=True, text=True, check=True).stdout
        return wrk_output.parse(text)

    def planners(seconds):
        """8 planning clients for `seconds`, in a process of their own at nice 19 (on this
        2-core machine the clients would otherwise take the CPU Floe serves load-table with;
        real clients run elsewhere). Starts them; returns a function that waits and gives
        plans per second."""
        code = (
            "import os, sys, threading, time, requests\n"
            "os.nice(19)\n"
            "url, token, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])\n"
            f"body = {json.dumps(body)!r}\n"
            "h = {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'}\n"
            "end, counts = time.perf_counter() + seconds, []\n"
            "def run():\n"
            "    s, n = requests.Session(), 0\n"
            "    while time.perf_counter() < end:\n"
            "        r = s.post(url, headers=h, data=body)\n"
            "        assert r.status_code == 200, r.text\n"
            "        n += 1\n"
            "    counts.append(n)\n"
            "ts = [threading.Thread(target=run) for _ in range(8)]\n"
            "[t.start() for t in ts]\n"
            "[t.join() for t in ts]\n"
            "print(sum(counts) / seconds)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code, plan_url, token, str(seconds)],
                                stdout=subprocess.PIPE, text=True)
        return lambda: float(proc.communicate()[0].strip())

    alone_plans = planners(5)()
    print(f"plans per second at 8 concurrent clients (selective, warm): {alone_plans:.0f}")
    alone = load_table(5)
    waiting = planners(6)
    time.sleep(0.5)
    beside = load_table(5)
    beside_plans = waiting()
    print(f"load-table c8 alone: {alone['rps']:.0f} req/s, p99 {alone['p99']:.2f} ms; "
          f"beside 8 planners: {beside['rps']:.0f} req/s, p99 {beside['p99']:.2f} ms "
          f"({beside['rps'] / alone['rps']:.2f}x; the planners meanwhile: {beside_plans:.0f} plans/s)")
finally:
    floe.terminate()
    floe.wait()
    s3.stop()
