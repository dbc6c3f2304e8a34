"""Benchmark (not a test): Floe's resident memory after many creates and commits, against its
configured caches. For each cache setting, a fresh sled catalog gets CREATES create-tables and as
many commits (each a new metadata file the cache keeps), from 8 clients; RSS is read when the work
ends and again after 10 s idle. Usage (from scripts/bench-memory.sh):
memory.py FLOE_BIN OUT_DIR CREATES"""

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import wrk_output

floe_bin, out, creates = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
CLIENTS = 8
MIB = 1024 * 1024
SETTINGS = [  # (metadata_cache_bytes, store_cache_bytes)
    (256 * MIB, 128 * MIB),  # the defaults
    (64 * MIB, 32 * MIB),
    (16 * MIB, 16 * MIB),
]


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start(name, metadata_bytes, store_bytes, port):
    root = out / f"{name}-warehouse"
    root.mkdir()
    config = out / f"{name}.toml"
    config.write_text(f"metadata_cache_bytes = {metadata_bytes}\nstore_cache_bytes = {store_bytes}\n\n"
                      f'[[warehouses]]\nname = "demo"\nstorage = {{ kind = "local", root = "file://{root}" }}\n')
    env = {**os.environ, "FLOE_ROOT_CLIENT_ID": "bench", "FLOE_ROOT_CLIENT_SECRET": "bench-secret-0123456",
           "FLOE_LOG": "warn"}
    proc = subprocess.Popen([floe_bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(out / f"{name}-data"),
                             "--config", str(config)], env=env, stdout=open(out / f"{name}.log", "w"),
                            stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    if not wrk_output.wait_ready(uri):
        raise SystemExit(f"floe did not start: {(out / f'{name}.log').read_text()}")
    return proc, uri


def session(uri):
    token = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{uri}/v1/oauth/tokens",
        data=b"grant_type=client_credentials&client_id=bench&client_secret=bench-secret-0123456")))["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    prefix = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{uri}/v1/config?warehouse=demo", headers=headers)))["overrides"]["prefix"]
    req = urllib.request.Request(f"{uri}/v1/{prefix}/namespaces", headers=headers, method="POST",
                                 data=json.dumps({"namespace": ["m"]}).encode())
    urllib.request.urlopen(req)
    return headers, f"/v1/{prefix}/namespaces/m/tables"


def client(port, headers, tables, worker, count, failures):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    schema = {"type": "struct", "schema-id": 0, "fields": [
        {"id": 1, "name": "id", "type": "long", "required": True},
        {"id": 2, "name": "city", "type": "string", "required": False}]}
    for i in range(count):
        name = f"t{worker}_{i}"
        for method, path, body in [
            ("POST", tables, {"name": name, "schema": schema}),
            ("POST", f"{tables}/{name}", {"requirements": [], "updates": [
                {"action": "set-properties", "updates": {"written-by": f"client {worker}"}}]}),
        ]:
            conn.request(method, path, json.dumps(body), headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                failures.append(r.status)


def run(name, metadata_bytes, store_bytes, port):
    proc, uri = start(name, metadata_bytes, store_bytes, port)
    try:
        headers, tables = session(uri)
        started_rss = rss_mib(proc.pid)
        failures, started = [], time.monotonic()
        per = creates // CLIENTS
        threads = [threading.Thread(target=client, args=(port, headers, tables, w, per, failures))
                   for w in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - started
        busy = rss_mib(proc.pid)
        time.sleep(10)
        idle = rss_mib(proc.pid)
        caches = (metadata_bytes * 1.25 + store_bytes) / MIB
        return {"caches": caches, "start": started_rss, "busy": busy, "idle": idle, "took": took,
                "ops": 2 * per * CLIENTS, "failures": len(failures)}
    finally:
        proc.terminate()
        proc.wait()


def main():
    print(f"{'metadata / store cache':<24}{'caches MiB':>11}{'start':>8}{'after':>8}{'idle':>8}"
          f"{'over caches':>12}{'ops/s':>8}")
    for i, (metadata_bytes, store_bytes) in enumerate(SETTINGS):
        name = f"m{metadata_bytes // MIB}-s{store_bytes // MIB}"
        r = run(name, metadata_bytes, store_bytes, 18700 + i)
        print(f"{f'{metadata_bytes // MIB} / {store_bytes // MIB} MiB':<24}{r['caches']:>11.0f}{r['start']:>8.0f}"
              f"{r['busy']:>8.0f}{r['idle']:>8.0f}{r['idle'] - r['caches']:>12.0f}{r['ops'] / r['took']:>8.0f}"
              + (f"  FAILED {r['failures']}" if r["failures"] else ""), flush=True)
    print(f"({creates} creates and {creates} commits per run, {CLIENTS} clients; caches = metadata "
          "(tables + a quarter for views) + store; RSS in MiB)")


main()
