"""A full disk and a database that goes away (issue 14, part 5).

- sled's data directory on a 48 MiB tmpfs the test mounts: once the disk has less free than
  `min_free_disk_bytes`, writes answer 507 at once with a clear message and reads go on; with no
  space at all, a metadata write fails 507 and leaves no file cut short; once space is freed the
  same server writes again, and after a restart every acknowledged commit is there.
- Two replicas on a PostgreSQL cluster the test starts with initdb: the database is stopped under
  eight PyIceberg writers, writes fail fast while it is down, /health/ready says 503, both
  replicas recover once it is back, and no acknowledged commit is lost.
"""

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from conftest import FloeServer
from postgres import Cluster

ROW = pa.table({"id": pa.array([1], pa.int64())})
RESERVE = 8 * 1024 * 1024


@pytest.fixture
def small_disk():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tempfile.mkdtemp(prefix="floe-small-disk-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mount], check=True)
    yield Path(mount)
    subprocess.run(["umount", "-l", mount], check=False)
    os.rmdir(mount)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave):
    """A file that leaves `leave` bytes free on `path`'s filesystem."""
    filler = path / "filler"
    with open(filler, "ab") as f:
        while free_bytes(path) > leave:
            f.write(b"\0" * min(1 << 20, max(4096, free_bytes(path) - leave)))
            f.flush()
            os.fsync(f.fileno())
    return filler


def test_a_full_disk_refuses_writes_clearly_loses_nothing_and_recovers_without_a_restart(small_disk):
    floe = FloeServer(f"min_free_disk_bytes = {RESERVE}\n", data=small_disk / "data")
    try:
        cat = floe.catalog()
        cat.create_namespace(("d",))
        table = cat.create_table(("d", "t"), schema=ROW.schema)
        acked = []
        for _ in range(3):
            table.append(ROW)
            acked.append(table.current_snapshot().snapshot_id)
        h = floe.root_headers()
        prefix = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
        url = f"{floe.uri}/v1/{prefix}/namespaces/d/tables/t"
        commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"k": "v"}}]}

        # Below the reserve: refused before anything is written, at once; reads go on.
        filler = fill(small_disk, RESERVE // 2)
        started = time.monotonic()
        r = requests.post(url, headers=h, json=commit, timeout=30)
        took = time.monotonic() - started
        assert r.status_code == 507, r.text
        assert "nearly full" in r.json()["error"]["message"] and r.json()["error"]["request-id"]
        assert took < 2, f"answered after {took:.2f} s"
        print(f"below the reserve a commit answered 507 in {took * 1000:.0f} ms")
        assert requests.get(url, headers=h).status_code == 200
        assert requests.post(f"{floe.uri}/v1/{prefix}/namespaces", headers=h,
                             json={"namespace": ["more"]}).status_code == 507

        # No space at all: the metadata write fails, and no file cut short is left behind.
        with open(filler, "ab") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        metadata_dir = Path(table.location().removeprefix("file://")) / "metadata"
        files_before = set(metadata_dir.iterdir())
        r = requests.post(url, headers=h, json=commit, timeout=30)
        assert r.status_code == 507, r.text
        assert set(metadata_dir.iterdir()) == files_before, "no file cut short is left"

        # Space is freed: the same process writes again.
        filler.unlink()
        table = cat.load_table(("d", "t"))
        table.append(ROW)
        acked.append(table.current_snapshot().snapshot_id)
        assert requests.post(url, headers=h, json=commit, timeout=30).status_code == 200

        # Nothing acknowledged is lost, nothing is corrupted: after a restart too.
        floe.kill()
        floe.start()
        table = floe.catalog().load_table(("d", "t"))
        ids = {s.snapshot_id for s in table.snapshots()}
        assert set(acked) <= ids, f"lost {set(acked) - ids}"
        assert table.scan().to_arrow().num_rows == len(acked)
        assert table.properties.get("k") == "v"
    finally:
        floe.stop()


WRITERS = 8


def test_postgres_restarted_under_eight_writers_on_two_replicas_loses_nothing():
    cluster = Cluster()
    env = {"FLOE_STORE": "postgres", "FLOE_POSTGRES__URL": cluster.url,
           "FLOE_MASTER_KEY": "q83vEjRWg4mQx4ZWo7/LdRzfBTfJ0l9nKb1fJ3dY4rE="}
    shared = tempfile.TemporaryDirectory(prefix="floe-shared-")
    config = f"""
[[warehouses]]
name = "lake"
storage = {{ kind = "local", root = "file://{shared.name}" }}
"""
    a = FloeServer(config, env)
    b = FloeServer(config, env)
    try:
        cat = a.catalog("lake")
        cat.create_namespace(("pg",))
        for i in range(WRITERS):
            cat.create_table(("pg", f"t{i}"), schema=ROW.schema)
        acked, failures, stop = [], [], threading.Event()

        def writer(i):
            server = (a, b)[i % 2]
            while not stop.is_set():
                started = time.monotonic()
                try:
                    table = server.catalog("lake").load_table(("pg", f"t{i}"))
                    table.append(ROW)
                    acked.append((i, table.current_snapshot().snapshot_id))
                except Exception:  # noqa: BLE001 (failures while the database is down are expected)
                    failures.append(time.monotonic() - started)
                    time.sleep(0.2)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(3)
        before = len(acked)
        cluster.stop("fast")
        time.sleep(1)
        down = [requests.get(f"{s.uri}/health/ready", timeout=5).status_code for s in (a, b)]
        time.sleep(2)
        failed_while_down = list(failures)
        cluster.start()
        time.sleep(5)
        stop.set()
        for t in threads:
            t.join()
        assert down == [503, 503], down
        assert failed_while_down, "writes failed while the database was down"
        slowest = max(failed_while_down)
        assert slowest < 10, f"a write took {slowest:.1f} s to fail while the database was down"
        assert len(acked) > before, "the replicas wrote again once the database was back"
        for s in (a, b):
            assert requests.get(f"{s.uri}/health/ready", timeout=5).status_code == 200
        for i in range(WRITERS):
            ids = {snap.snapshot_id for snap in b.catalog("lake").load_table(("pg", f"t{i}")).snapshots()}
            lost = [sid for j, sid in acked if j == i and sid not in ids]
            assert not lost, f"t{i} lost acknowledged commits {lost}"
        print(f"{before} commits before the stop, {len(acked)} in all; {len(failures)} writes failed while "
              f"the database was down, the slowest after {slowest:.2f} s")
    finally:
        a.stop()
        b.stop()
        cluster.destroy()
        shared.cleanup()
