"""PyIceberg against Floe on its embedded default: sled and a local warehouse directory."""

import threading
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException, NamespaceNotEmptyError, NoSuchTableError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "city", StringType(), required=False),
)
SPEC = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="city"))


def rows(ids, city):
    return pa.table({"id": pa.array(ids, pa.int64()), "city": pa.array([city] * len(ids), pa.string())})


def test_pyiceberg_table_lifecycle(floe):
    run_table_lifecycle(floe.catalog(), lambda location: Path(location.removeprefix("file://")).exists(),
                        floe, "demo")


def run_table_lifecycle(cat, location_exists, floe, warehouse):
    """Create, partition, append, read, evolve, time-travel, rename and purge: one user's story,
    run on every kind of warehouse. `location_exists(location)` says whether files remain there;
    the purged table waits in `floe`'s recycle bin of `warehouse` until it is purged from there."""
    cat.create_namespace(("sales",), {"owner": "e2e"})
    assert ("sales",) in cat.list_namespaces()
    table = cat.create_table(("sales", "orders"), schema=SCHEMA, partition_spec=SPEC)
    table.append(rows([1, 2, 3], "oslo"))
    first_snapshot = table.current_snapshot().snapshot_id
    table.append(rows([4, 5], "rome"))

    loaded = cat.load_table(("sales", "orders"))
    assert sorted(loaded.scan().to_arrow()["id"].to_pylist()) == [1, 2, 3, 4, 5]
    assert loaded.scan(row_filter="city == 'rome'").to_arrow().num_rows == 2

    with loaded.update_schema() as update:
        update.add_column("note", StringType())
    loaded = cat.load_table(("sales", "orders"))
    assert [f.name for f in loaded.schema().fields] == ["id", "city", "note"]
    loaded.append(pa.table({"id": pa.array([6], pa.int64()), "city": pa.array(["oslo"]), "note": pa.array(["new"])}))

    old = loaded.scan(snapshot_id=first_snapshot).to_arrow()
    assert sorted(old["id"].to_pylist()) == [1, 2, 3]
    assert len(cat.load_table(("sales", "orders")).history()) == 3

    cat.create_namespace(("archive",))
    cat.rename_table(("sales", "orders"), ("archive", "orders_2026"))
    with pytest.raises(NoSuchTableError):
        cat.load_table(("sales", "orders"))
    moved = cat.load_table(("archive", "orders_2026"))
    assert moved.scan().to_arrow().num_rows == 6
    location = moved.location()
    assert location_exists(location)

    with pytest.raises(NamespaceNotEmptyError):
        cat.drop_namespace(("archive",))
    cat.purge_table(("archive", "orders_2026"))
    assert location_exists(location), "a purged table waits in the recycle bin"
    assert [d["name"] for d in floe.dropped(warehouse)] == ["orders_2026"]
    floe.purge_dropped(warehouse)
    assert not location_exists(location), "purging it from the bin deletes the table's files"
    assert cat.list_tables(("archive",)) == []
    cat.drop_namespace(("archive",))


def test_eight_concurrent_appenders_lose_nothing(floe):
    floe.catalog().create_namespace(("load",))
    floe.catalog().create_table(("load", "events"), schema=SCHEMA)
    writers, per_writer = 8, 4
    errors = []

    def writer(w):
        cat = floe.catalog()
        try:
            for i in range(per_writer):
                while True:
                    table = cat.load_table(("load", "events"))
                    try:
                        table.append(rows([w * 100 + i], f"w{w}"))
                        break
                    except CommitFailedException:
                        continue  # someone else committed first: reload and try again
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    table = floe.catalog().load_table(("load", "events"))
    ids = sorted(table.scan().to_arrow()["id"].to_pylist())
    assert ids == sorted(w * 100 + i for w in range(writers) for i in range(per_writer))
    assert len(table.history()) == writers * per_writer


def test_staged_create_transaction(floe):
    cat = floe.catalog()
    cat.create_namespace(("tx",))
    with cat.create_table_transaction(("tx", "t"), schema=SCHEMA) as txn:
        txn.append(rows([1, 2], "x"))
    assert cat.load_table(("tx", "t")).scan().to_arrow().num_rows == 2


def test_views_and_namespace_properties(floe):
    cat = floe.catalog()
    cat.create_namespace(("props",), {"a": "1", "b": "2"})
    summary = cat.update_namespace_properties(("props",), removals={"b", "zz"}, updates={"c": "3"})
    assert summary.removed == ["b"] and summary.missing == ["zz"] and summary.updated == ["c"]
    assert cat.load_namespace_properties(("props",)) == {"a": "1", "c": "3"}
    assert cat.namespace_exists(("props",))
    assert not cat.table_exists(("props", "none"))
    assert cat.list_views(("props",)) == []
