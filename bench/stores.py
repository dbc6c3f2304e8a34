"""Benchmark (not a test): load-table and commits on sled, on PostgreSQL with one replica, and on
PostgreSQL with two replicas (each wrk run split in two, one half per replica, run at once; the
rates are summed). Every acknowledged commit is checked to be in the final metadata.
Usage (from scripts/bench-stores.sh): stores.py FLOE_BIN POSTGRES_ADMIN_URL OUT_DIR SECONDS"""

import base64
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import wrk_output

floe_bin, admin_url, out, seconds = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
here = Path(__file__).parent
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()


def psql(url, sql):
    subprocess.run(["psql", url, "-qAtc", sql], check=True, capture_output=True)


def start_replicas(name, count, store_env, warehouse_root):
    config = out / f"{name}.toml"
    config.write_text(f'[[warehouses]]\nname = "demo"\nstorage = {{ kind = "local", root = "file://{warehouse_root}" }}\n')
    procs, uris = [], []
    for i in range(count):
        port = 18600 + 10 * len(list(out.glob("*.toml"))) + i
        env = {**os.environ, "FLOE_ROOT_CLIENT_ID": "bench", "FLOE_ROOT_CLIENT_SECRET": "bench-secret-0123456",
               "FLOE_LOG": "warn", **store_env}
        log = open(out / f"{name}-{i}.log", "w")
        procs.append(subprocess.Popen([floe_bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                                       str(out / f"{name}-data-{i}"), "--config", str(config)],
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
        uri = f"http://127.0.0.1:{port}"
        if not wrk_output.wait_ready(uri):
            raise SystemExit(f"{name} replica {i} did not start: {(out / f'{name}-{i}.log').read_text()}")
        uris.append(uri)
    return procs, uris


def wrk(label, uris, conns, script, path, env=None, one_thread_per_conn=False):
    """Runs wrk against every replica at once, `conns` split evenly; sums rates, keeps the worst p99."""
    per = conns // len(uris)
    runs = []
    for i, uri in enumerate(uris):
        threads = per if one_thread_per_conn else max(1, min(2 // len(uris), per))
        e = {**os.environ, **(env or {}), "BENCH_TID_OFFSET": str(i * per)}
        f = open(out / f"{label}-{i}.txt", "w")
        runs.append(subprocess.Popen(["wrk", f"-t{threads}", f"-c{per}", f"-d{seconds}s", "--latency", "-s",
                                      str(here / script), f"{uri}{path}"], env=e, stdout=f))
    for r in runs:
        r.wait()
    parts = [wrk_output.parse((out / f"{label}-{i}.txt").read_text()) for i in range(len(uris))]
    threads = {}
    for p in parts:
        threads.update(p["threads"])
    return {"rps": sum(p["rps"] for p in parts), "p50": max(p["p50"] or 0 for p in parts),
            "p99": max(p["p99"] or 0 for p in parts), "non2xx": sum(p["non2xx"] for p in parts),
            "threads": threads}


def properties(uri, tables, table, token):
    req = urllib.request.Request(f"{uri}{tables}/{table}", headers={"Authorization": f"Bearer {token}"})
    return json.load(urllib.request.urlopen(req))["metadata"]["properties"]


def run(name, count, store_env):
    root = out / f"{name}-warehouse"
    root.mkdir()
    procs, uris = start_replicas(name, count, store_env, root)
    try:
        meta = json.loads(subprocess.run([sys.executable, str(here / "prepare.py"), uris[0], "bench", "bench-secret-0123456",
                                          str(out)], check=True, capture_output=True, text=True).stdout)
        token = meta["token"]
        os.environ["BENCH_TOKEN"] = token
        tables = f"/v1/{meta['prefix']}/namespaces/bench/tables"
        results = {
            "load c8": wrk(f"{name}-load8", uris, 8, "load_table.lua", f"{tables}/hot"),
            "load c64": wrk(f"{name}-load64", uris, 64, "load_table.lua", f"{tables}/hot"),
            "commit c1": wrk(f"{name}-solo", uris[:1], 1, "commit.lua", f"{tables}/solo", one_thread_per_conn=True),
            "commit own c8": wrk(f"{name}-own", uris, 8, "commit.lua", f"{tables}/c", {"BENCH_SPREAD": "1"},
                                 one_thread_per_conn=True),
            "commit one table c8": wrk(f"{name}-shared", uris, 8, "commit.lua", f"{tables}/shared",
                                       one_thread_per_conn=True),
        }
        checks = {"commit c1": lambda t: "solo", "commit own c8": lambda t: f"c{t}",
                  "commit one table c8": lambda t: "shared"}
        # How many commits shared one flush (sled) or one statement (PostgreSQL's batches).
        metrics = urllib.request.urlopen(f"{uris[0]}/metrics").read().decode()
        counter = lambda prefix: sum(float(line.split()[-1]) for line in metrics.splitlines()
                                     if line.startswith(prefix))
        durability[name] = {"flushes": counter("floe_store_flushes_total"),
                            "batches": counter("floe_commit_batches_total"),
                            "swaps": counter('floe_store_seconds_count{op="swap_metadata"}')}
        for label, table_of in checks.items():
            lost = [(t, acked) for t, acked in results[label]["threads"].items()
                    if int(properties(uris[-1], tables, table_of(t), token).get(f"bench.{t}", 0)) not in (acked, acked + 1)]
            results[label]["check"] = "all present" if not lost else f"LOST {lost}"
        return results
    finally:
        for p in procs:
            p.terminate()
            p.wait()


durability = {}


def main():
    db = f"floe_bench_{os.getpid()}"
    psql(admin_url, f"DROP DATABASE IF EXISTS {db}")
    psql(admin_url, f"CREATE DATABASE {db}")
    pg_url = urlunparse(urlparse(admin_url)._replace(path=f"/{db}"))
    configs = [("sled", 1, {}),
               ("pg-1", 1, {"FLOE_STORE": "postgres", "FLOE_POSTGRES__URL": pg_url, "FLOE_MASTER_KEY": MASTER_KEY}),
               ("pg-2", 2, {"FLOE_STORE": "postgres", "FLOE_POSTGRES__URL": pg_url, "FLOE_MASTER_KEY": MASTER_KEY})]
    table = {}
    try:
        for name, count, env in configs:
            if name == "pg-2":  # a fresh catalog for the second PostgreSQL run
                psql(admin_url, f"DROP DATABASE {db} WITH (FORCE)")
                psql(admin_url, f"CREATE DATABASE {db}")
            print(f"running {name} ({seconds} s per run)...", file=sys.stderr)
            table[name] = run(name, count, env)
    finally:
        psql(admin_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    names = list(table)
    print(f"{'run':<22}" + "".join(f"{n + ' req/s':>14}{'p99 ms':>9}" for n in names))
    for run_name in table[names[0]]:
        row = f"{run_name:<22}"
        for n in names:
            r = table[n][run_name]
            row += f"{r['rps']:>14.0f}{r['p99']:>9.2f}"
        print(row)
    for n, d in durability.items():
        print(f"  {n} (first replica): {d['swaps']:.0f} commits, {d['flushes']:.0f} flushes, "
              f"{d['batches']:.0f} commit statements")
    for run_name in table[names[0]]:
        for n in names:
            r = table[n][run_name]
            extra = [f"non-2xx {r['non2xx']}"] + ([f"commits {r['check']}"] if "check" in r else [])
            print(f"  {n} {run_name}: {', '.join(extra)}")


main()
