"""Memory stays within the configured caches plus a fixed allowance. A sled Floe with a 32 MiB
metadata cache and a 16 MiB store cache gets thousands of small tables, each committed once
(two metadata files each), and a few tables whose metadata is large (1,000 columns), and then
every table is loaded again (the cache evicts as it goes). Its resident memory must stay within
the caches' bound (tables, plus a quarter for views, plus the store's) and ALLOWANCE_MIB; with
the caches made smaller, the same work ends lower."""

import threading
import time
from pathlib import Path

import requests

from conftest import FloeServer

MIB = 1024 * 1024
# Everything that is not a configured cache: code, runtime, connections, the fixed-size caches
# (docs/operations.md, "Memory"). This is a debug build, whose code is larger than a release's.
ALLOWANCE_MIB = 100
SMALL_TABLES = 4000
WIDE_TABLES = 8
CLIENTS = 8


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def schema(columns):
    return {"type": "struct", "schema-id": 0, "fields": [
        {"id": i + 1, "name": f"column_{i}", "type": "long", "required": False, "doc": f"measure {i}"}
        for i in range(columns)]}


def work(server, warehouse_root):
    """Creates and commits the tables, loads each again; the RSS at the end."""
    h = server.root_headers()
    prefix = requests.get(f"{server.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
    tables = f"{server.uri}/v1/{prefix}/namespaces/m/tables"
    requests.post(f"{server.uri}/v1/{prefix}/namespaces", headers=h, json={"namespace": ["m"]})
    failures = []

    def client(worker):
        s = requests.Session()
        for i in range(worker, SMALL_TABLES, CLIENTS):
            name = f"small_{i}"
            if s.post(tables, headers=h, json={"name": name, "schema": schema(3)}).status_code != 200:
                failures.append(name)
            commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"n": str(i)}}]}
            if s.post(f"{tables}/{name}", headers=h, json=commit).status_code != 200:
                failures.append(name)
        for i in range(worker, SMALL_TABLES, CLIENTS):
            if s.get(f"{tables}/small_{i}", headers=h).status_code != 200:
                failures.append(f"load small_{i}")

    for i in range(WIDE_TABLES):
        r = requests.post(tables, headers=h, json={"name": f"wide_{i}", "schema": schema(1000)})
        assert r.status_code == 200, r.text
    threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(WIDE_TABLES):
        assert requests.get(f"{tables}/wide_{i}", headers=h).status_code == 200
    assert not failures, failures[:10]
    time.sleep(1)
    return rss_mib(server.proc.pid)


def config(root, metadata_mib, store_mib):
    return (f"metadata_cache_bytes = {metadata_mib * MIB}\nstore_cache_bytes = {store_mib * MIB}\n\n"
            f'[[warehouses]]\nname = "demo"\nstorage = {{ kind = "local", root = "file://{root}" }}\n')


def test_memory_stays_within_the_configured_caches_and_follows_them_down(tmp_path):
    results = {}
    for metadata_mib, store_mib in [(32, 16), (4, 4)]:
        root = tmp_path / f"wh-{metadata_mib}"
        root.mkdir()
        server = FloeServer(config(root, metadata_mib, store_mib))
        try:
            started = rss_mib(server.proc.pid)
            rss = work(server, root)
        finally:
            server.stop()
        bound = metadata_mib * 1.25 + store_mib + ALLOWANCE_MIB
        results[metadata_mib] = rss
        print(f"caches {metadata_mib} + {store_mib} MiB: RSS {started:.0f} MiB at start, {rss:.0f} MiB after "
              f"{SMALL_TABLES} creates, {SMALL_TABLES} commits, {WIDE_TABLES} wide tables and reloading all "
              f"(bound {bound:.0f} MiB)")
        assert rss <= bound, f"RSS {rss:.0f} MiB is over the bound {bound:.0f} MiB"
    assert results[4] < results[32] - 10, results
