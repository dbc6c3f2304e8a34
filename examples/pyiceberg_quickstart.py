"""Creates a namespace and a table in Floe's `demo` warehouse, appends rows and reads them back."""

import argparse
import uuid

import pyarrow as pa
from pyiceberg.catalog import load_catalog

parser = argparse.ArgumentParser()
parser.add_argument("--uri", default="http://127.0.0.1:8181")
parser.add_argument("--credentials-file", default="floe-data/root-credentials",
                    help="file with client_id=... and client_secret=... lines (written by Floe on first start)")
args = parser.parse_args()

creds = dict(line.split("=", 1) for line in open(args.credentials_file).read().split())
catalog = load_catalog("floe", type="rest", uri=args.uri, warehouse="demo",
                       credential=f"{creds['client_id']}:{creds['client_secret']}",
                       **{"oauth2-server-uri": f"{args.uri}/v1/oauth/tokens"})

namespace = "quickstart"
if (namespace,) not in catalog.list_namespaces():
    catalog.create_namespace(namespace)
rows = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "city": pa.array(["Oslo", "Lima", "Pune"])})
table = catalog.create_table(f"{namespace}.cities_{uuid.uuid4().hex[:8]}", schema=rows.schema)
table.append(rows)
read = catalog.load_table(table.name()).scan().to_arrow()
print(f"table {'.'.join(table.name())} at {table.location()}")
print(read.sort_by("id").to_pylist())
assert read.num_rows == 3
print("PyIceberg wrote and read a table through Floe.")
