"""Every commit Floe acknowledged is still there after the process is killed with SIGKILL."""

import pyarrow as pa


def test_acknowledged_commits_survive_kill_9(floe):
    cat = floe.catalog()
    cat.create_namespace(("d",))
    table = cat.create_table(("d", "t"), schema=pa.schema([("id", pa.int64())]))
    for i in range(20):
        table.append(pa.table({"id": pa.array([i], pa.int64())}))
    acknowledged = table.metadata_location
    floe.kill()
    floe.start()
    reloaded = floe.catalog().load_table(("d", "t"))
    assert reloaded.metadata_location == acknowledged
    assert len(reloaded.history()) == 20
    assert sorted(reloaded.scan().to_arrow()["id"].to_pylist()) == list(range(20))
