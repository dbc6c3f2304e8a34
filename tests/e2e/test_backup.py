"""Online backup and restore of a sled catalog (issue 14, part 4): `floe backup` while eight
PyIceberg writers commit, `floe restore` into a new data directory, and a server on it holds every
commit acknowledged before the backup began; every table loads and scans."""

import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa

from conftest import ROOT_ID, ROOT_SECRET, FloeServer, floe_binary

WRITERS = 8
ROW = pa.table({"id": pa.array([1], pa.int64())})


def floe_cli(*args):
    env = {"FLOE_ROOT_CLIENT_ID": ROOT_ID, "FLOE_ROOT_CLIENT_SECRET": ROOT_SECRET, "PATH": "/usr/bin:/bin"}
    return subprocess.run([floe_binary(), *args], capture_output=True, text=True, env=env, timeout=120)


def test_a_backup_under_eight_writers_restores_every_commit_acknowledged_before_it():
    floe = FloeServer()
    restored = None
    work = tempfile.TemporaryDirectory(prefix="floe-backup-")
    try:
        cat = floe.catalog()
        cat.create_namespace(("bk",))
        for i in range(WRITERS):
            cat.create_table(("bk", f"t{i}"), schema=ROW.schema)
        acked, errors, stop = [], [], threading.Event()

        def writer(i):
            table = floe.catalog().load_table(("bk", f"t{i}"))
            while not stop.is_set():
                try:
                    table.append(ROW)
                    acked.append((i, table.current_snapshot().snapshot_id, time.monotonic()))
                except Exception as e:  # noqa: BLE001 (any failure fails the test below)
                    errors.append(repr(e))
                    return

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(3)
        began = time.monotonic()
        backup_dir = Path(work.name) / "backup"
        done = floe_cli("backup", "--to", str(backup_dir), "--url", floe.uri, "--data-dir", str(floe.data))
        took = time.monotonic() - began
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        assert done.returncode == 0, done.stderr
        assert not errors, errors[:3]
        before = [(i, s) for i, s, at in acked if at < began]
        assert len(before) >= WRITERS, f"only {len(before)} commits before the backup"
        assert (backup_dir / "master.key").exists(), "the generated master key is saved with it"
        print(f"backup of {done.stdout.strip()} took {took:.2f} s under {WRITERS} writers; "
              f"{len(before)} commits acknowledged before it, {len(acked)} in all")

        # Nothing is overwritten: a second backup into the same directory is refused.
        again = floe_cli("backup", "--to", str(backup_dir), "--url", floe.uri)
        assert again.returncode != 0 and "not empty" in again.stderr

        data = Path(work.name) / "restored"
        done = floe_cli("restore", "--from", str(backup_dir), "--data-dir", str(data))
        assert done.returncode == 0, done.stderr
        restored = FloeServer(data=data)
        rcat = restored.catalog()
        for i in range(WRITERS):
            table = rcat.load_table(("bk", f"t{i}"))
            ids = {s.snapshot_id for s in table.snapshots()}
            missing = [s for j, s in before if j == i and s not in ids]
            assert not missing, f"t{i} lost acknowledged commits {missing}"
            assert table.scan().to_arrow().num_rows == len(table.snapshots())
        paused = [line for line in floe.log_path.read_text().splitlines() if "took a snapshot" in line]
        print(paused[-1] if paused else "no snapshot line")
    finally:
        floe.stop()
        if restored:
            restored.stop()
        work.cleanup()


def test_a_damaged_backup_is_refused_and_nothing_is_written():
    work = tempfile.TemporaryDirectory(prefix="floe-backup-")
    try:
        backup = Path(work.name) / "backup"
        backup.mkdir()
        (backup / "catalog.snapshot").write_bytes(b"FLOE-SLED-SNAPSHOT 1\n" + b"\0" * 64)
        data = Path(work.name) / "data"
        done = floe_cli("restore", "--from", str(backup), "--data-dir", str(data))
        assert done.returncode != 0 and "checksum" in done.stderr, done.stderr
        assert not (data / "catalog").exists() or not any((data / "catalog").iterdir())
    finally:
        work.cleanup()
