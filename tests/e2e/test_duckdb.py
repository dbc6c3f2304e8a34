"""DuckDB's iceberg extension (offline, from PyPI wheels) attaches Floe and reads a table.
DuckDB runs in a subprocess with a timeout: it can hang instead of failing."""

import json
import subprocess
import sys
import tempfile

import pyarrow as pa

from conftest import ROOT_ID, ROOT_SECRET

DUCKDB_SCRIPT = r"""
import json, sys, duckdb, duckdb_extensions
uri, ext_dir = sys.argv[1], sys.argv[2]
con = duckdb.connect(config={"extension_directory": ext_dir, "autoinstall_known_extensions": "false"})
for name in ("httpfs", "avro", "iceberg"):
    duckdb_extensions.import_extension(name, con=con)
    con.execute(f"LOAD {name}")
con.execute(f"CREATE SECRET floe (TYPE iceberg, CLIENT_ID '{sys.argv[3]}', CLIENT_SECRET '{sys.argv[4]}', OAUTH2_SERVER_URI '{uri}/v1/oauth/tokens')")
con.execute(f"ATTACH 'demo' AS floe (TYPE iceberg, SECRET floe, ENDPOINT '{uri}')")
count = con.execute("SELECT count(*), sum(id) FROM floe.duck.events").fetchone()
tables = con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = 'floe'").fetchall()
print(json.dumps({"count": count[0], "sum": int(count[1]), "tables": sorted(t[0] for t in tables)}))
"""


def test_duckdb_reads_a_table(floe):
    cat = floe.catalog()
    cat.create_namespace(("duck",))
    table = cat.create_table(("duck", "events"), schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([1, 2, 3, 4], pa.int64())}))
    with tempfile.TemporaryDirectory() as ext_dir:
        out = subprocess.run([sys.executable, "-c", DUCKDB_SCRIPT, floe.uri, ext_dir, ROOT_ID, ROOT_SECRET],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"count": 4, "sum": 10, "tables": ["events"]}
