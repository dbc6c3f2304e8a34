"""Memory stays within the configured caches plus a fixed allowance. A sled Floe with a 64 MiB
metadata cache and a 16 MiB store cache gets thousands of small tables, each committed once
(two metadata files each), and a few hundred whose metadata is large (1,000 columns), and then
every table is loaded again (the cache evicts as it goes). Its own resident memory (RssAnon: all
but the binary's code pages, which are the same whatever the work) must stay within the caches'
bound (tables, plus a quarter for views, plus the store's) and ALLOWANCE_MIB; with the caches made
smaller, the same work ends lower."""

import threading
import time
from pathlib import Path

import requests

from conftest import FloeServer

MIB = 1024 * 1024
# Everything that is not a configured cache: runtime, threads, connections, buffers, the fixed-size
# caches (docs/operations.md, "Memory").
ALLOWANCE_MIB = 100
SMALL_TABLES = 4000
WIDE_TABLES = 240
CLIENTS = 8


def rss_mib(pid, field="VmRSS"):
    """Resident memory in MiB: all of it (`VmRSS`), or the process's own (`RssAnon`: heap and
    stacks, without the binary's code pages, which the kernel reads back from the file)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


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
        for i in range(worker, WIDE_TABLES, CLIENTS):
            if s.post(tables, headers=h, json={"name": f"wide_{i}", "schema": wide}).status_code != 200:
                failures.append(f"wide_{i}")
        for i in range(worker, SMALL_TABLES, CLIENTS):
            if s.get(f"{tables}/small_{i}", headers=h).status_code != 200:
                failures.append(f"load small_{i}")
        for i in range(worker, WIDE_TABLES, CLIENTS):
            if s.get(f"{tables}/wide_{i}", headers=h).status_code != 200:
                failures.append(f"load wide_{i}")

    wide = schema(1000)
    threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:10]
    time.sleep(1)
    return rss_mib(server.proc.pid), rss_mib(server.proc.pid, "RssAnon")


def config(root, metadata_mib, store_mib):
    return (f"metadata_cache_bytes = {metadata_mib * MIB}\nstore_cache_bytes = {store_mib * MIB}\n\n"
            f'[[warehouses]]\nname = "demo"\nstorage = {{ kind = "local", root = "file://{root}" }}\n')


def test_memory_stays_within_the_configured_caches_and_follows_them_down(tmp_path):
    results = {}
    for metadata_mib, store_mib in [(64, 16), (4, 4)]:
        root = tmp_path / f"wh-{metadata_mib}"
        root.mkdir()
        server = FloeServer(config(root, metadata_mib, store_mib))
        try:
            started = rss_mib(server.proc.pid, "RssAnon")
            rss, own = work(server, root)
        finally:
            server.stop()
        bound = metadata_mib * 1.25 + store_mib + ALLOWANCE_MIB
        results[metadata_mib] = own
        print(f"caches {metadata_mib} + {store_mib} MiB: own memory {started:.0f} MiB at start, {own:.0f} MiB "
              f"(RSS {rss:.0f} MiB) after {SMALL_TABLES} creates, {SMALL_TABLES} commits, {WIDE_TABLES} wide "
              f"tables and reloading all (bound {bound:.0f} MiB)")
        assert own <= bound, f"{own:.0f} MiB is over the bound {bound:.0f} MiB"
    assert results[4] < results[64] - 20, results
