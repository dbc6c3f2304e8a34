"""Benchmark (not a test): a million tables. Builds, through the store API (bench/populate.rs),
1,000 tenants x 10 namespaces x 100 tables plus a namespace of 10,000 tables, on sled and then on
PostgreSQL, next to a 100-table catalog on the same store, and reports for each: populate time,
startup time, RSS, load-table p50/p99 for a hot table (wrk, 8 connections) and for cold tables
(the first load of each of 2,000 tables, one at a time), listing the 10,000-table namespace page by
page, and disk per table.
Usage (from scripts/bench-scale.sh): scale.py FLOE_BIN POPULATE_BIN POSTGRES_ADMIN_URL OUT_DIR.
SCALE_STORES=sled or =postgres runs one store only (both by default)."""

import base64
import http.client
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import wrk_output

floe_bin, populate_bin, admin_url, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
here = Path(__file__).parent
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
COLD = 2000
SIZES = {  # name: populate arguments
    "100 tables": ["--tenants", "1", "--namespaces", "1", "--tables", "100", "--big", "0", "--sample", "1"],
    "1M tables": [],  # populate's defaults: 1,000 x 10 x 100 + 10,000
}


def psql(url, sql):
    return subprocess.run(["psql", url, "-qAtc", sql], check=True, capture_output=True, text=True).stdout.strip()


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def du_bytes(path):
    return int(subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout.split()[0])


def measure(name, store_env, data_dir, tables):
    env = {**os.environ, "FLOE_ROOT_CLIENT_ID": "bench", "FLOE_ROOT_CLIENT_SECRET": "bench-secret-0123456",
           "FLOE_LOG": "warn", **store_env}
    port = 18800 + len(list(out.glob("*.log")))
    log = out / f"{name}.log"
    started = time.monotonic()
    proc = subprocess.Popen([floe_bin, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
                            env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        if not wrk_output.wait_ready(uri, seconds=600):
            raise SystemExit(f"floe did not start: {log.read_text()[-2000:]}")
        startup = time.monotonic() - started
        rss_start = rss_mib(proc.pid)
        token = json.load(urllib.request.urlopen(urllib.request.Request(
            f"{uri}/v1/oauth/tokens",
            data=b"grant_type=client_credentials&client_id=bench&client_secret=bench-secret-0123456")))["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        sample = [line.split() for line in (tables / "sample.txt").read_text().splitlines() if line]
        random.seed(7)
        cold = random.sample(sample, min(COLD, len(sample)))
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def get(path):
            t = time.perf_counter()
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise SystemExit(f"{path}: {r.status} {body[:300]}")
            return time.perf_counter() - t, body

        cold_ms = [get(f"/v1/{w}/namespaces/{ns}/tables/{t}")[0] * 1000 for w, ns, t in cold]
        hot_w, hot_ns, hot_t = cold[0]
        env_wrk = {**os.environ, "BENCH_TOKEN": token}
        with open(out / f"{name}-hot.txt", "w") as f:
            subprocess.run(["wrk", "-t2", "-c8", "-d10s", "--latency", "-s", str(here / "load_table.lua"),
                            f"{uri}/v1/{hot_w}/namespaces/{hot_ns}/tables/{hot_t}"], env=env_wrk, stdout=f, check=True)
        hot = wrk_output.parse((out / f"{name}-hot.txt").read_text())
        paging = None
        big = [s for s in sample if s[1] == "big"]
        conn.close()  # idle through the wrk run: the server has closed it
        conn = http.client.HTTPConnection("127.0.0.1", port)
        if big:
            page_ms, names, token_q = [], 0, ""
            while True:
                took, body = get(f"/v1/{big[0][0]}/namespaces/big/tables?pageSize=100{token_q}")
                page = json.loads(body)
                page_ms.append(took * 1000)
                names += len(page["identifiers"])
                if not page.get("next-page-token"):
                    break
                token_q = f"&pageToken={urllib.request.quote(page['next-page-token'])}"
            paging = {"pages": len(page_ms), "names": names, "p50": percentile(page_ms, 0.5),
                      "p99": percentile(page_ms, 0.99), "total_ms": sum(page_ms)}
        return {"startup": startup, "rss_start": rss_start, "rss_end": rss_mib(proc.pid),
                "cold_p50": percentile(cold_ms, 0.5), "cold_p99": percentile(cold_ms, 0.99),
                "hot_rps": hot["rps"], "hot_p50": hot["p50"], "hot_p99": hot["p99"], "paging": paging,
                "non2xx": hot["non2xx"]}
    finally:
        proc.terminate()
        proc.wait()


def populate(args, store_args, files, resume=True):
    """Builds the catalog (its figures kept in `files/populate.json`; with SCALE_RESUME=1 a catalog
    built before in the same OUT_DIR is used again)."""
    saved = files / "populate.json"
    if resume and os.environ.get("SCALE_RESUME") == "1" and saved.exists():
        return json.loads(saved.read_text())
    started = time.monotonic()
    r = subprocess.run([populate_bin, *store_args, "--files", str(files), *args], check=True,
                       capture_output=True, text=True)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["wall"] = time.monotonic() - started
    saved.write_text(json.dumps(result))
    return result


def main():
    results = {}
    stores = os.environ.get("SCALE_STORES", "sled,postgres").split(",")
    for size, args in SIZES.items():
        key = size.replace(" ", "")
        if "sled" in stores:
            sled(size, key, args, results)
        if "postgres" in stores:
            postgres(size, key, args, results)
    report(results)


def sled(size, key, args, results):
    data, files = out / f"sled-{key}-data", out / f"sled-{key}-files"
    files.mkdir(parents=True, exist_ok=True)
    print(f"sled, {size}: populating...", file=sys.stderr, flush=True)
    pop = populate(args, ["--store", "sled", "--data-dir", str(data)], files)
    m = measure(f"sled-{key}", {}, data, files)
    m.update(populate=pop, disk_per_table=du_bytes(data / "catalog") / pop["tables"])
    results[("sled", size)] = m
    print(json.dumps(m), file=sys.stderr, flush=True)


def postgres(size, key, args, results):
    db = f"floe_scale_{key.lower()}"
    psql(admin_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql(admin_url, f"CREATE DATABASE {db}")
    pg_url = urlunparse(urlparse(admin_url)._replace(path=f"/{db}"))
    files = out / f"pg-{key}-files"
    subprocess.run(["rm", "-rf", str(files)], check=True)  # the database is dropped after each run
    files.mkdir(parents=True)
    try:
        print(f"postgres, {size}: populating...", file=sys.stderr, flush=True)
        pop = populate(args, ["--store", "postgres", "--url", pg_url], files, resume=False)
        psql(pg_url, "VACUUM ANALYZE")
        m = measure(f"pg-{key}", {"FLOE_STORE": "postgres", "FLOE_POSTGRES__URL": pg_url,
                                  "FLOE_MASTER_KEY": MASTER_KEY}, out / f"pg-{key}-data", files)
        size_bytes = int(psql(pg_url, "SELECT pg_total_relation_size('tabulars')"))
        m.update(populate=pop, disk_per_table=size_bytes / pop["tables"])
        results[("postgres", size)] = m
        print(json.dumps(m), file=sys.stderr, flush=True)
    finally:
        psql(admin_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def report(results):
    print(f"{'store, catalog':<24}{'populate/s':>11}{'start s':>9}{'RSS MiB':>9}{'hot p50':>9}{'hot p99':>9}"
          f"{'hot req/s':>10}{'cold p50':>10}{'cold p99':>10}{'page p50':>10}{'page p99':>10}{'B/table':>9}")
    for (store, size), m in results.items():
        p = m["paging"] or {}
        print(f"{store + ', ' + size:<24}{m['populate']['tables_per_sec']:>11.0f}{m['startup']:>9.2f}"
              f"{m['rss_end']:>9.0f}{m['hot_p50']:>9.2f}{m['hot_p99']:>9.2f}{m['hot_rps']:>10.0f}"
              f"{m['cold_p50']:>10.2f}{m['cold_p99']:>10.2f}{p.get('p50', 0):>10.2f}{p.get('p99', 0):>10.2f}"
              f"{m['disk_per_table']:>9.0f}")
    print("(latencies in ms; RSS after the loads; cold = the first load of each of "
          f"{COLD} tables; pages of 100 names of the 10,000-table namespace)")


main()
