"""DuckDB reads Floe's tables through its iceberg extension (installed offline from PyPI wheels).

    python examples/duckdb_attach.py --uri http://127.0.0.1:8181 --credentials-file floe-data/root-credentials
"""

import argparse
import tempfile

import duckdb
import duckdb_extensions

parser = argparse.ArgumentParser()
parser.add_argument("--uri", default="http://127.0.0.1:8181")
parser.add_argument("--credentials-file", default="floe-data/root-credentials")
parser.add_argument("--warehouse", default="demo")
args = parser.parse_args()
creds = dict(line.split("=", 1) for line in open(args.credentials_file).read().split())

con = duckdb.connect(config={"extension_directory": tempfile.mkdtemp(), "autoinstall_known_extensions": "false"})
for name in ("httpfs", "avro", "iceberg"):
    duckdb_extensions.import_extension(name, con=con)
    con.execute(f"LOAD {name}")
con.execute(f"""CREATE SECRET floe (TYPE iceberg, CLIENT_ID '{creds["client_id"]}',
                CLIENT_SECRET '{creds["client_secret"]}', OAUTH2_SERVER_URI '{args.uri}/v1/oauth/tokens')""")
con.execute(f"ATTACH '{args.warehouse}' AS floe (TYPE iceberg, SECRET floe, ENDPOINT '{args.uri}')")
for schema, table in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'floe'").fetchall():
    count = con.execute(f'SELECT count(*) FROM floe."{schema}"."{table}"').fetchone()[0]
    print(f"{schema}.{table}: {count} rows")
