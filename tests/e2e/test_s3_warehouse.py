"""A warehouse on S3 (SeaweedFS): Floe writes metadata with its own keys; PyIceberg, with its own
keys (credential vending is a later issue), writes and reads data there."""

import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException

from conftest import FloeServer
from seaweed import ACCESS_KEY, NEXT_ACCESS_KEY, NEXT_SECRET_KEY, SECRET_KEY, SeaweedS3
from test_pyiceberg_local import run_table_lifecycle


@pytest.fixture(scope="module")
def s3():
    server = SeaweedS3()
    yield server
    server.stop()


@pytest.fixture
def floe_s3(s3):
    config = f"""
[[warehouses]]
name = "lake"
storage = {{ kind = "s3", bucket = "{s3.bucket}", key_prefix = "wh", region = "us-east-1", endpoint = "{s3.endpoint}", path_style = true }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
"""
    server = FloeServer(config)
    yield server
    server.stop()


def client_keys(s3):
    return {"s3.access-key-id": ACCESS_KEY, "s3.secret-access-key": SECRET_KEY}


def test_pyiceberg_on_an_s3_warehouse(floe_s3, s3):
    cat = floe_s3.catalog("lake", **client_keys(s3))
    cat.create_namespace(("ns",))
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    table = cat.create_table(("ns", "t"), schema=data.schema)
    assert table.location().startswith(f"s3://{s3.bucket}/wh/")
    metadata_keys = [k for k in s3.keys("wh/") if k.endswith(".metadata.json")]
    assert len(metadata_keys) == 1, "Floe wrote the first metadata file to S3"
    table.append(data)
    table.append(data)
    assert cat.load_table(("ns", "t")).scan().to_arrow().num_rows == 6
    prefix = table.location().removeprefix(f"s3://{s3.bucket}/")
    assert s3.keys(prefix + "/data/"), "data files are in the bucket"
    cat.purge_table(("ns", "t"))
    assert s3.keys(prefix + "/data/"), "a purged table waits in the recycle bin"
    floe_s3.purge_dropped("lake")
    assert s3.keys(prefix + "/") == [], "purge removed every object under the table"


def test_table_lifecycle_on_s3(floe_s3, s3):
    def exists(location):
        return bool(s3.keys(location.removeprefix(f"s3://{s3.bucket}/") + "/"))

    run_table_lifecycle(floe_s3.catalog("lake", **client_keys(s3)), exists, floe_s3, "lake")


def test_eight_appenders_on_s3_lose_nothing(floe_s3, s3):
    floe_s3.catalog("lake", **client_keys(s3)).create_namespace(("load",))
    floe_s3.catalog("lake", **client_keys(s3)).create_table(("load", "t"), schema=pa.schema([("id", pa.int64())]))
    errors = []

    def writer(w):
        cat = floe_s3.catalog("lake", **client_keys(s3))
        try:
            for i in range(3):
                while True:
                    try:
                        cat.load_table(("load", "t")).append(pa.table({"id": pa.array([w * 10 + i], pa.int64())}))
                        break
                    except CommitFailedException:
                        continue
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    ids = sorted(floe_s3.catalog("lake", **client_keys(s3)).load_table(("load", "t")).scan().to_arrow()["id"].to_pylist())
    assert ids == sorted(w * 10 + i for w in range(8) for i in range(3))


def test_tenant_admin_registers_an_s3_credential_and_warehouse(s3):
    import requests
    from pathlib import Path
    floe = FloeServer(env={"FLOE_SECRET_ENV_ALLOWLIST": "LAKE_S3_CREDENTIAL",
                           # The spelling other credential stores use: resolved at each use.
                           "LAKE_S3_CREDENTIAL": f'{{"key_id": "{ACCESS_KEY}", "secret": "{SECRET_KEY}", "region": "us-east-1"}}'})
    try:
        h = floe.root_headers()
        tenant = requests.get(f"{floe.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
        base = f"{floe.uri}/management/v1/tenants/{tenant}"
        value = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
        r = requests.post(f"{base}/storage-credentials", headers=h, json={"name": "lake-keys", "kind": "s3-access-key", "value": value})
        assert r.status_code == 201 and SECRET_KEY not in r.text, r.text
        listed = requests.get(f"{base}/storage-credentials", headers=h)
        assert listed.json() == {"credentials": [{"name": "lake-keys", "kind": "s3-access-key"}]}
        storage = {"kind": "s3", "bucket": s3.bucket, "key_prefix": "tenant-lake", "region": "us-east-1",
                   "endpoint": s3.endpoint, "path_style": True}
        wh = requests.post(f"{base}/warehouses", headers=h, json={"name": "s3lake", "storage": storage, "credential": "lake-keys"}).json()
        report = requests.post(f"{base}/warehouses/{wh['id']}/validate", headers=h).json()
        assert report["ok"], report

        cat = floe.catalog("s3lake", **{"s3.access-key-id": ACCESS_KEY, "s3.secret-access-key": SECRET_KEY})
        cat.create_namespace("ns")
        table = cat.create_table("ns.t", schema=pa.schema([("id", pa.int64())]))
        table.append(pa.table({"id": pa.array([1], pa.int64())}))
        assert table.location().startswith(f"s3://{s3.bucket}/tenant-lake/")

        # The AWS CLI's key names work as well as Floe's own.
        aws_names = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
        r = requests.put(f"{base}/storage-credentials/lake-keys", headers=h, json={"kind": "s3-access-key", "value": aws_names})
        assert r.status_code == 200 and SECRET_KEY not in r.text, r.text
        assert requests.post(f"{base}/warehouses/{wh['id']}/validate", headers=h).json()["ok"]
        both = {"access_key_id": ACCESS_KEY, "aws_access_key_id": ACCESS_KEY, "secret": SECRET_KEY}
        r = requests.put(f"{base}/storage-credentials/lake-keys", headers=h, json={"kind": "s3-access-key", "value": both})
        assert r.status_code == 400 and "'access_key_id' twice" in r.json()["error"]["message"], r.text
        assert SECRET_KEY not in r.text and ACCESS_KEY not in r.text

        # Rotating to wrong keys fails closed; the error names the step, never a secret.
        bad = {"access_key_id": ACCESS_KEY, "secret_access_key": "wrong-secret-value"}
        assert requests.put(f"{base}/storage-credentials/lake-keys", headers=h, json={"kind": "s3-access-key", "value": bad}).status_code == 200
        report = requests.post(f"{base}/warehouses/{wh['id']}/validate", headers=h).json()
        assert not report["ok"] and "wrong-secret-value" not in str(report), report
        # A reference to an allow-listed environment variable works again; others are refused.
        r = requests.put(f"{base}/storage-credentials/lake-keys", headers=h, json={"kind": "s3-access-key", "reference": "env:HOME"})
        assert r.status_code == 400 and "allow-list" in r.json()["error"]["message"]
        r = requests.put(f"{base}/storage-credentials/lake-keys", headers=h, json={"kind": "s3-access-key", "reference": "env:LAKE_S3_CREDENTIAL"})
        assert r.status_code == 200, r.text
        assert requests.post(f"{base}/warehouses/{wh['id']}/validate", headers=h).json()["ok"]
        assert requests.delete(f"{base}/storage-credentials/lake-keys", headers=h).status_code == 409, "in use"
    finally:
        floe.proc.terminate()
        floe.proc.wait(timeout=15)
    for path in Path(floe.dir.name).rglob("*"):
        if path.is_file() and path.name not in ("floe.toml",):
            data = path.read_bytes()
            assert SECRET_KEY.encode() not in data and b"wrong-secret-value" not in data, f"secret in {path}"
    floe.dir.cleanup()


def test_a_rotated_credential_is_what_the_next_load_vends(s3):
    """Static vending hands out the warehouse's own keys; after a rotation the very next load
    (and the server's own IO) uses the new pair, not one cached from the old value."""
    import requests
    floe = FloeServer()
    try:
        h = floe.root_headers()
        tenant = requests.get(f"{floe.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
        base = f"{floe.uri}/management/v1/tenants/{tenant}"
        keys = lambda ak, sk: {"kind": "s3-access-key", "value": {"access_key_id": ak, "secret_access_key": sk}}
        assert requests.post(f"{base}/storage-credentials", headers=h,
                             json={"name": "keys", **keys(ACCESS_KEY, SECRET_KEY)}).status_code == 201
        storage = {"kind": "s3", "bucket": s3.bucket, "key_prefix": "rotating", "region": "us-east-1",
                   "endpoint": s3.endpoint, "path_style": True, "vending": "static"}
        wh = requests.post(f"{base}/warehouses", headers=h, json={"name": "rotating", "storage": storage, "credential": "keys"})
        assert wh.status_code == 201, wh.text
        wh = wh.json()
        cat = floe.catalog("rotating")
        cat.create_namespace("ns")
        cat.create_table("ns.t", schema=pa.schema([("id", pa.int64())]))
        table_url = f"{floe.uri}/v1/{wh['id']}/namespaces/ns/tables/t"
        vended = lambda: requests.get(table_url, headers={**h, "X-Iceberg-Access-Delegation": "vended-credentials"}).json()
        assert vended()["storage-credentials"][0]["config"]["s3.access-key-id"] == ACCESS_KEY

        r = requests.put(f"{base}/storage-credentials/keys", headers=h, json=keys(NEXT_ACCESS_KEY, NEXT_SECRET_KEY))
        assert r.status_code == 200, r.text
        config = vended()["storage-credentials"][0]["config"]
        assert config["s3.access-key-id"] == NEXT_ACCESS_KEY, "the rotation took effect at once"
        assert config["s3.secret-access-key"] == NEXT_SECRET_KEY
        # The vended pair works, and the server's own IO writes with it too.
        table = floe.catalog("rotating").load_table("ns.t")
        table.append(pa.table({"id": pa.array([7], pa.int64())}))
        assert table.scan().to_arrow()["id"].to_pylist() == [7]
        assert requests.post(f"{base}/warehouses/{wh['id']}/validate", headers=h).json()["ok"]
    finally:
        floe.stop()


@pytest.fixture(scope="module")
def moto():
    import subprocess
    import time

    import requests

    from conftest import free_port
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_credentials_referenced_in_aws_secrets_manager_and_ssm(s3, moto):
    import json

    import boto3
    import requests
    aws = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "endpoint_url": moto}
    keys = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
    arn = boto3.client("secretsmanager", **aws).create_secret(Name="floe/lake", SecretString=json.dumps({"lake": keys}))["ARN"]
    boto3.client("ssm", **aws).put_parameter(Name="/floe/lake", Value=json.dumps(keys), Type="SecureString")
    # The operator allows references to the floe/ secrets and the /floe/ parameters, nothing else.
    allowed = f"{arn.split('secret:')[0]}secret:floe/,/floe/"
    floe = FloeServer(env={"AWS_ENDPOINT_URL_SECRETS_MANAGER": moto, "AWS_ENDPOINT_URL_SSM": moto, "AWS_REGION": "us-east-1",
                           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "FLOE_SECRET_AWS_ALLOWLIST": allowed})
    try:
        h = floe.root_headers()
        tenant = requests.get(f"{floe.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
        base = f"{floe.uri}/management/v1/tenants/{tenant}"
        r = requests.post(f"{base}/storage-credentials", headers=h,
                          json={"name": "sm", "kind": "s3-access-key", "reference": f"aws-secretsmanager:{arn}#lake"})
        assert r.status_code == 201, r.text
        storage = {"kind": "s3", "bucket": s3.bucket, "key_prefix": "sm-lake", "region": "us-east-1",
                   "endpoint": s3.endpoint, "path_style": True}
        wh = requests.post(f"{base}/warehouses", headers=h, json={"name": "smlake", "storage": storage, "credential": "sm"}).json()
        validate = f"{base}/warehouses/{wh['id']}/validate"
        assert requests.post(validate, headers=h).json()["ok"], "resolved from Secrets Manager"
        r = requests.put(f"{base}/storage-credentials/sm", headers=h, json={"kind": "s3-access-key", "reference": "aws-ssm:/floe/lake"})
        assert r.status_code == 200, r.text
        assert requests.post(validate, headers=h).json()["ok"], "resolved from SSM"
        for outside in ("aws-ssm:/prod/db", f"aws-secretsmanager:{arn.split('secret:')[0]}secret:prod/db"):
            r = requests.put(f"{base}/storage-credentials/sm", headers=h, json={"kind": "s3-access-key", "reference": outside})
            assert r.status_code == 400 and "secret_aws_allowlist" in r.json()["error"]["message"], r.text
        r = requests.put(f"{base}/storage-credentials/sm", headers=h, json={"kind": "s3-access-key", "reference": "aws-ssm:/floe/missing"})
        r = requests.post(validate, headers=h)
        assert r.status_code == 503, r.text
        message = r.json()["error"]["message"]
        assert "aws-ssm:/floe/missing" in message and SECRET_KEY not in message, message
    finally:
        floe.stop()
