"""DuckDB's iceberg extension (offline, from PyPI wheels) attaches Floe and reads a table.
DuckDB runs in a subprocess with a timeout: it can hang instead of failing."""

import pyarrow as pa

from conftest import run_duckdb_sql


def test_duckdb_reads_a_table(floe):
    cat = floe.catalog()
    cat.create_namespace(("duck",))
    table = cat.create_table(("duck", "events"), schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([1, 2, 3, 4], pa.int64())}))
    count, tables = run_duckdb_sql(floe, [
        "SELECT count(*), sum(id) FROM floe.duck.events",
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'floe'",
    ])
    assert "error" not in count and "error" not in tables, (count, tables)
    assert count["rows"] == [[4, 10]]
    assert sorted(t[0] for t in tables["rows"]) == ["events"]
