"""Credential vending on S3, end to end on this machine: SeaweedFS (S3 + STS with session policies),
Floe with an STS-vending warehouse, and PyIceberg holding no S3 keys of its own.

Run from the repository root after building Floe (`cargo build`):
    venv=$(scripts/python-env.sh); PYTHONPATH=tests/e2e "$venv/bin/python" examples/s3_vending.py
"""

import os

import boto3
import pyarrow as pa
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ROOT_ID, ROOT_SECRET, FloeServer
from seaweed import ACCESS_KEY, READ_ROLE, SECRET_KEY, WRITE_ROLE, SeaweedS3

for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(var, None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

s3 = SeaweedS3(sts=True)
floe = FloeServer(f"""
[[warehouses]]
name = "lake"
storage = {{ kind = "s3", bucket = "{s3.bucket}", key_prefix = "wh", region = "us-east-1", endpoint = "{s3.endpoint}", path_style = true, sts_endpoint = "{s3.endpoint}", read_role_arn = "{READ_ROLE}", write_role_arn = "{WRITE_ROLE}" }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
""")
try:
    # PyIceberg with no S3 keys: every data file it writes or reads goes through a vended session.
    catalog = floe.catalog("lake")
    catalog.create_namespace("sales")
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "city": pa.array(["Oslo", "Lima", "Pune"])})
    orders = catalog.create_table("sales.orders", schema=data.schema)
    orders.append(data)
    catalog.create_table("sales.orders_archive", schema=data.schema).append(data)
    print("PyIceberg read", catalog.load_table("sales.orders").scan().to_arrow().num_rows,
          "rows with vended credentials only")

    # The same credentials, by hand: they open sales.orders and nothing else.
    token = requests.post(f"{floe.uri}/v1/oauth/tokens", data={
        "grant_type": "client_credentials", "client_id": ROOT_ID, "client_secret": ROOT_SECRET}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    prefix = requests.get(f"{floe.uri}/v1/config?warehouse=lake", headers=auth).json()["overrides"]["prefix"]
    answer = requests.get(f"{floe.uri}/v1/{prefix}/namespaces/sales/tables/orders/credentials", headers=auth).json()
    [credential] = answer["storage-credentials"]
    config = credential["config"]
    print("vended for", credential["prefix"], "until", config["s3.session-token-expires-at-ms"])
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                          aws_access_key_id=config["s3.access-key-id"],
                          aws_secret_access_key=config["s3.secret-access-key"],
                          aws_session_token=config["s3.session-token"],
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    own = credential["prefix"].removeprefix(f"s3://{s3.bucket}/")
    print("list own table:", client.list_objects_v2(Bucket=s3.bucket, Prefix=own)["KeyCount"], "objects")
    other = catalog.load_table("sales.orders_archive").location().removeprefix(f"s3://{s3.bucket}/") + "/"
    try:
        client.list_objects_v2(Bucket=s3.bucket, Prefix=other)
        print("UNEXPECTED: the session listed another table")
        raise SystemExit(1)
    except ClientError as e:
        print("list another table:", e.response["Error"]["Code"])
finally:
    floe.stop()
    s3.stop()
