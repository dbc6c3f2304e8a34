"""The recycle bin with a real client, a real kill and two replicas (issue 14, part 3).

- PyIceberg drops a table; a tenant admin restores it; PyIceberg scans the same rows again.
- A purge of a table with many files is killed (SIGKILL) in the middle: after the restart the
  purge starts again from the queue in the store and finishes, and a directory beside the table
  whose name starts with the table's is untouched.
- Two replicas on one PostgreSQL database purge a batch of dropped tables: each one exactly once.
"""

import json
import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from pyiceberg.exceptions import NoSuchTableError

from conftest import FloeServer
from test_replicas import replicas  # noqa: F401 (the two-replica fixture)

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64())})


def local_path(location):
    return Path(location.removeprefix("file://"))


def test_pyiceberg_reads_a_restored_table():
    floe = FloeServer()
    try:
        cat = floe.catalog()
        cat.create_namespace(("bin",))
        table = cat.create_table(("bin", "events"), schema=ROWS.schema)
        table.append(ROWS)
        cat.drop_table(("bin", "events"))
        with pytest.raises(NoSuchTableError):
            cat.load_table(("bin", "events"))
        [dropped] = floe.dropped()
        assert dropped["name"] == "events" and dropped["purge_files"] is False
        bin_url, h = floe.recycle_bin()
        r = requests.post(f"{bin_url}/{dropped['id']}/restore", headers=h)
        assert r.status_code == 200, r.text
        restored = cat.load_table(("bin", "events"))
        assert restored.metadata_location == table.metadata_location
        assert sorted(restored.scan().to_arrow()["id"].to_pylist()) == [1, 2, 3]
        assert floe.dropped() == []
    finally:
        floe.stop()


FILES = 30_000


def test_a_purge_killed_in_the_middle_finishes_after_the_restart():
    floe = FloeServer("""
drop_retention_secs = 0
purge_interval_ms = 200
purge_lease_secs = 1
""")
    try:
        cat = floe.catalog()
        cat.create_namespace(("big",))
        table = cat.create_table(("big", "t"), schema=ROWS.schema)
        table.append(ROWS)
        location = local_path(table.location())
        for d in range(30):
            folder = location / "data" / f"part-{d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(FILES // 30):
                (folder / f"{i}.parquet").write_bytes(b"x")
        beside = Path(f"{location}-beside")
        beside.mkdir()
        (beside / "keep.parquet").write_bytes(b"keep")

        cat.purge_table(("big", "t"))
        deadline = time.time() + 20
        while "purging a dropped object's files" not in floe.log_path.read_text():
            assert time.time() < deadline, "the purge did not start"
            time.sleep(0.005)
        # Killed once it has begun deleting: the first of the 30 folders is gone.
        parts = [location / "data" / f"part-{d}" for d in range(30)]
        while all(p.exists() for p in parts):
            assert time.time() < deadline, "the purge deleted nothing"
            time.sleep(0.001)
        floe.kill()
        assert location.exists() and any(p.exists() for p in parts), "killed in the middle of the purge"
        left = sum(1 for _ in location.rglob("*.parquet"))
        print(f"killed mid-purge with {left} of {FILES + 1} data files left")

        floe.start()
        deadline = time.time() + 30
        while location.exists() or floe.dropped():
            assert time.time() < deadline, "the purge did not finish after the restart"
            time.sleep(0.1)
        assert (beside / "keep.parquet").read_bytes() == b"keep", "nothing beside the table is purged"
        with pytest.raises(NoSuchTableError):
            floe.catalog().load_table(("big", "t"))
    finally:
        floe.stop()


def departures(server):
    """Ids of dropped objects this replica forgot (JSON log lines)."""
    ids = []
    for line in server.log_path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("fields", {}).get("message") == "left the recycle bin":
            ids.append(event["fields"]["id"])
    return ids


def test_two_replicas_purge_each_dropped_table_once(replicas):  # noqa: F811
    a, b = replicas
    cat = a.catalog("lake")
    ns = f"purge_{uuid.uuid4().hex[:6]}"
    cat.create_namespace((ns,))
    locations = []
    for i in range(12):
        t = cat.create_table((ns, f"t{i}"), schema=ROWS.schema)
        t.append(ROWS)
        locations.append(local_path(t.location()))
        cat.purge_table((ns, f"t{i}"))
    # Both replicas see the one bin. Purges asked of both at once: each replica works the whole
    # queue, so they race for every object, and the leases decide.
    ids = {d["id"] for d in b.dropped("lake") if d["namespace"] == [ns]}
    assert len(ids) == 12
    bins = [a.recycle_bin("lake"), b.recycle_bin("lake")]
    for i, d in enumerate(sorted(ids)):
        bin_url, h = bins[i % 2]
        assert requests.delete(f"{bin_url}/{d}", headers=h).status_code == 202
    deadline = time.time() + 30
    while any(loc.exists() for loc in locations):
        assert time.time() < deadline, "the purges did not finish"
        time.sleep(0.1)
    time.sleep(0.5)
    done = [i for i in departures(a) + departures(b) if i in ids]
    assert sorted(done) == sorted(ids), f"each purged once: {len(done)} departures for {len(ids)} tables"
    print(f"replica A purged {len([i for i in departures(a) if i in ids])}, B {len([i for i in departures(b) if i in ids])}")
