"""Credential vending on S3 against SeaweedFS, whose STS enforces session policies: clients that
hold no S3 keys of their own work through Floe's table-scoped sessions, and those sessions open
their table and nothing else."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ROOT_ID, ROOT_SECRET, FloeServer, spark_dir
from seaweed import ACCESS_KEY, READ_ROLE, SECRET_KEY, WRITE_ROLE, SeaweedS3

DELEGATION = {"X-Iceberg-Access-Delegation": "vended-credentials"}


@pytest.fixture(scope="module")
def s3():
    # No client in these tests may find S3 keys of its own.
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(var, None)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    server = SeaweedS3(sts=True)
    yield server
    server.stop()


def vending_config(s3, margin=300, duration=900):
    return f"""
[vending]
refresh_margin_secs = {margin}

[[warehouses]]
name = "lake"
storage = {{ kind = "s3", bucket = "{s3.bucket}", key_prefix = "wh", region = "us-east-1", endpoint = "{s3.endpoint}", path_style = true, sts_endpoint = "{s3.endpoint}", read_role_arn = "{READ_ROLE}", write_role_arn = "{WRITE_ROLE}", session_duration_secs = {duration}, remote_signing = true }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
"""


@pytest.fixture(scope="module")
def floe(s3):
    server = FloeServer(vending_config(s3))
    yield server
    server.stop()


class Api:
    """Raw HTTP as one principal."""

    def __init__(self, floe, client_id=ROOT_ID, secret=ROOT_SECRET, warehouse="lake"):
        self.uri = floe.uri
        self.client_id, self.secret = client_id, secret
        token = requests.post(f"{floe.uri}/v1/oauth/tokens", data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}).json()
        self.h = {"Authorization": f"Bearer {token['access_token']}"}
        cfg = requests.get(f"{floe.uri}/v1/config", params={"warehouse": warehouse}, headers=self.h).json()
        self.prefix = cfg["overrides"]["prefix"]

    def table_url(self, ns, table):
        return f"{self.uri}/v1/{self.prefix}/namespaces/{ns}/tables/{table}"

    def load(self, ns, table, delegation=True):
        r = requests.get(self.table_url(ns, table), headers={**self.h, **(DELEGATION if delegation else {})})
        r.raise_for_status()
        return r.json()

    def credentials(self, ns, table):
        return requests.get(self.table_url(ns, table) + "/credentials", headers=self.h)

    def manage(self, method, path, body=None):
        r = requests.request(method, f"{self.uri}/management/v1{path}", headers=self.h, json=body)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None


def principal_with(floe, name, grants, warehouse="lake"):
    """A principal whose only role grants `grants` ([(resource, privilege)]); returns its Api."""
    root = Api(floe, warehouse=warehouse)
    tenant = root.manage("GET", "/whoami")["tenant_id"]
    created = root.manage("POST", f"/tenants/{tenant}/principals", {"name": name})
    role = root.manage("POST", f"/tenants/{tenant}/roles", {"name": f"{name}-role"})
    for resource, privilege in grants:
        root.manage("POST", f"/tenants/{tenant}/grants",
                    {"role_id": role["id"], "resource": resource, "privilege": privilege})
    root.manage("PUT", f"/tenants/{tenant}/roles/{role['id']}/principals/{created['principal']['id']}")
    return Api(floe, created["client_id"], created["client_secret"], warehouse)


def table_resource(api, ns, name):
    return {"kind": "table", "warehouse": api.prefix, "table": {"namespace": [ns], "name": name}}


def key_of(s3, location):
    return location.removeprefix(f"s3://{s3.bucket}/")


def denied(call):
    with pytest.raises(ClientError) as e:
        call()
    assert e.value.response["Error"]["Code"] in ("AccessDenied", "403"), e.value.response


def sts_calls(floe):
    text = requests.get(f"{floe.uri}/metrics").text
    m = re.search(r"^floe_sts_calls_total(?:\{[^}]*\})? (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


@pytest.fixture(scope="module")
def tables(floe, s3):
    """scope.t1 and its sibling scope.t10 (locations .../sib/t1 and .../sib/t10), other.t1."""
    cat = floe.catalog("lake")
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    cat.create_namespace(("scope",))
    cat.create_namespace(("other",))
    root = f"s3://{s3.bucket}/wh"
    out = {}
    for ident, location in [(("scope", "t1"), f"{root}/sib/t1"), (("scope", "t10"), f"{root}/sib/t10"),
                            (("other", "t1"), None)]:
        t = cat.create_table(ident, schema=data.schema, location=location)
        t.append(data)
        out[ident] = t.location()
    return out


def test_pyiceberg_works_with_only_vended_credentials(floe, s3):
    cat = floe.catalog("lake")  # no S3 keys: everything below goes through vended sessions
    cat.create_namespace(("vend",))
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": pa.array(["a", "b", "c"])})
    table = cat.create_table(("vend", "events"), schema=data.schema)
    table.append(data)
    table.append(data)
    assert cat.load_table(("vend", "events")).scan().to_arrow().num_rows == 6
    assert s3.keys(key_of(s3, table.location()) + "/data/"), "PyIceberg wrote data files to S3"

    loaded = Api(floe).load("vend", "events")
    [cred] = loaded["storage-credentials"]
    assert cred["prefix"] == table.location() + "/"
    assert loaded["metadata-location"].startswith(cred["prefix"])
    config = cred["config"]
    assert config["s3.access-key-id"] != ACCESS_KEY, "a session, not the server's keys"
    assert config["s3.session-token"]
    assert int(config["s3.session-token-expires-at-ms"]) > time.time() * 1000 + 800_000
    assert config["client.refresh-credentials-endpoint"].endswith("/tables/events/credentials")
    assert config["s3.endpoint"] == s3.endpoint and config["s3.path-style-access"] == "true"
    assert loaded["config"]["s3.session-token"] == config["s3.session-token"]
    assert "storage-credentials" not in Api(floe).load("vend", "events", delegation=False)


def test_sessions_open_their_table_and_nothing_else(floe, s3, tables):
    r = Api(floe).credentials("scope", "t1")
    assert r.status_code == 200, r.text
    [cred] = r.json()["storage-credentials"]
    c = s3.client_with(cred["config"])
    t1, t10, other = key_of(s3, tables[("scope", "t1")]), key_of(s3, tables[("scope", "t10")]), \
        key_of(s3, tables[("other", "t1")])
    assert t10.startswith(t1), "t10 is a sibling whose name starts with t1's"
    c.put_object(Bucket=s3.bucket, Key=f"{t1}/data/probe", Body=b"x")
    assert c.get_object(Bucket=s3.bucket, Key=f"{t1}/data/probe")["Body"].read() == b"x"
    assert c.list_objects_v2(Bucket=s3.bucket, Prefix=f"{t1}/")["KeyCount"] > 0
    c.delete_object(Bucket=s3.bucket, Key=f"{t1}/data/probe")

    t10_file = s3.keys(f"{t10}/")[0]
    denied(lambda: c.get_object(Bucket=s3.bucket, Key=t10_file))
    denied(lambda: c.put_object(Bucket=s3.bucket, Key=f"{t10}/data/evil", Body=b"x"))
    denied(lambda: c.delete_object(Bucket=s3.bucket, Key=t10_file))
    denied(lambda: c.list_objects_v2(Bucket=s3.bucket, Prefix=f"{t10}/"))
    denied(lambda: c.list_objects_v2(Bucket=s3.bucket, Prefix=t1))  # would cover t10 too
    denied(lambda: c.list_objects_v2(Bucket=s3.bucket))
    other_file = s3.keys(f"{other}/")[0]
    denied(lambda: c.get_object(Bucket=s3.bucket, Key=other_file))
    denied(lambda: c.put_object(Bucket=s3.bucket, Key=f"{other}/data/evil", Body=b"x"))
    assert s3.keys(f"{t10}/data/evil") == [] and s3.keys(f"{other}/data/evil") == []


def test_read_only_grants_yield_sessions_that_cannot_write(floe, s3, tables):
    probe = Api(floe)
    reader = principal_with(floe, "reader", [(table_resource(probe, "scope", "t1"), "TABLE_READ_DATA")])
    [cred] = reader.load("scope", "t1")["storage-credentials"]
    c = s3.client_with(cred["config"])
    t1 = key_of(s3, tables[("scope", "t1")])
    existing = s3.keys(f"{t1}/")[0]
    assert c.get_object(Bucket=s3.bucket, Key=existing)["Body"].read()
    denied(lambda: c.put_object(Bucket=s3.bucket, Key=f"{t1}/data/evil", Body=b"x"))
    denied(lambda: c.delete_object(Bucket=s3.bucket, Key=existing))
    assert existing in s3.keys(f"{t1}/")

    # Metadata access alone: the table loads, without credentials; /credentials is refused.
    viewer = principal_with(floe, "viewer", [(table_resource(probe, "scope", "t1"), "TABLE_READ_METADATA")])
    loaded = viewer.load("scope", "t1")
    assert "storage-credentials" not in loaded and "s3.session-token" not in loaded["config"]
    assert viewer.credentials("scope", "t1").status_code == 403


def test_concurrent_loads_share_one_sts_call(floe, tables):
    api = principal_with(floe, "burst", [(table_resource(Api(floe), "scope", "t1"), "TABLE_READ_DATA")])
    before = sts_calls(floe)
    with ThreadPoolExecutor(16) as pool:
        loads = list(pool.map(lambda _: api.load("scope", "t1"), range(32)))
    keys = {l["storage-credentials"][0]["config"]["s3.access-key-id"] for l in loads}
    assert len(keys) == 1, "every load got the same cached session"
    assert sts_calls(floe) - before == 1


def test_sessions_are_renewed_before_the_refresh_margin(s3):
    # 900 s sessions (STS's minimum) with an 895 s margin: a session is served for about 5 s.
    server = FloeServer(vending_config(s3, margin=895, duration=900))
    try:
        cat = server.catalog("lake")
        cat.create_namespace(("margin",))
        cat.create_table(("margin", "t"), schema=pa.schema([("id", pa.int64())]))
        api = Api(server)
        first = api.load("margin", "t")["storage-credentials"][0]["config"]
        again = api.load("margin", "t")["storage-credentials"][0]["config"]
        assert again["s3.access-key-id"] == first["s3.access-key-id"]
        calls = sts_calls(server)
        time.sleep(6)
        later = api.load("margin", "t")["storage-credentials"][0]["config"]
        assert later["s3.access-key-id"] != first["s3.access-key-id"], "renewed inside the margin"
        assert sts_calls(server) == calls + 1
        left_ms = int(later["s3.session-token-expires-at-ms"]) - time.time() * 1000
        assert left_ms >= 895_000, "never handed out with less than the margin left"
    finally:
        server.stop()


def test_presigned_urls_reach_one_file_inside_the_table(floe, s3, tables):
    api = Api(floe)
    t1, t10 = tables[("scope", "t1")], tables[("scope", "t10")]
    t1_file = s3.keys(key_of(s3, t1) + "/")[0]
    url = f"{api.table_url('scope', 't1')}/presign"
    r = requests.get(url, params={"location": f"s3://{s3.bucket}/{t1_file}"}, headers=api.h)
    assert r.status_code == 200, r.text
    body = requests.get(r.json()["url"])
    assert body.status_code == 200
    assert body.content == s3.client.get_object(Bucket=s3.bucket, Key=t1_file)["Body"].read()

    t10_file = s3.keys(key_of(s3, t10) + "/")[0]
    for location in [f"s3://{s3.bucket}/{t10_file}", f"{t1}/../t10/x", f"{t1}/%2e%2e/t10/x", t1, f"{t1}0/x",
                     f"s3://other/{t1_file}"]:
        r = requests.get(url, params={"location": location}, headers=api.h)
        assert r.status_code == 403, (location, r.status_code, r.text)

    put = requests.get(url, params={"location": f"{t1}/data/uploaded", "method": "PUT"}, headers=api.h)
    assert put.status_code == 200, put.text
    assert requests.put(put.json()["url"], data=b"hello").status_code == 200
    assert s3.client.get_object(Bucket=s3.bucket, Key=key_of(s3, t1) + "/data/uploaded")["Body"].read() == b"hello"

    reader = principal_with(floe, "presign-reader", [(table_resource(api, "scope", "t1"), "TABLE_READ_DATA")])
    r = requests.get(url, params={"location": f"{t1}/data/x", "method": "PUT"}, headers=reader.h)
    assert r.status_code == 403


def test_remote_signing_signs_only_requests_inside_the_table(floe, s3, tables):
    api = Api(floe)
    t1_key, t10_key = key_of(s3, tables[("scope", "t1")]), key_of(s3, tables[("scope", "t10")])
    loaded = requests.get(api.table_url("scope", "t1"),
                          headers={**api.h, "X-Iceberg-Access-Delegation": "remote-signing"}).json()
    assert loaded["config"]["s3.remote-signing-enabled"] == "true"
    sign_url = f"{loaded['config']['s3.signer.uri']}/{loaded['config']['s3.signer.endpoint']}"
    t1_file = s3.keys(t1_key + "/")[0]

    def sign(method, uri, body=None, headers=None):
        return requests.post(sign_url, headers=api.h, json={
            "region": "us-east-1", "method": method, "uri": uri,
            "headers": headers or {"x-amz-content-sha256": ["UNSIGNED-PAYLOAD"]}, "body": body})

    uri = f"{s3.endpoint}/{s3.bucket}/{urllib.parse.quote(t1_file)}"
    r = sign("GET", uri)
    assert r.status_code == 200, r.text
    signed = r.json()
    sent = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", **{k: v[0] for k, v in signed["headers"].items()}}
    got = requests.get(signed["uri"], headers=sent)
    assert got.status_code == 200, got.text

    t10_file = s3.keys(t10_key + "/")[0]
    assert sign("GET", f"{s3.endpoint}/{s3.bucket}/{t10_file}").status_code == 403
    assert sign("GET", f"{s3.endpoint}/{s3.bucket}/{t1_key}/../{t10_file.removeprefix('wh/')}").status_code == 403
    assert sign("GET", f"{s3.endpoint}/{s3.bucket}?list-type=2&prefix={t1_key}").status_code == 403
    assert sign("GET", f"{s3.endpoint}/{s3.bucket}?list-type=2&prefix={t1_key}/").status_code == 200
    delete = (f"<Delete><Object><Key>{t1_key}/a</Key></Object>"
              f"<Object><Key>{t10_file}</Key></Object></Delete>")
    assert sign("POST", f"{s3.endpoint}/{s3.bucket}?delete", body=delete).status_code == 403

    # The older global endpoint: the table comes from remote-signing-config's properties.
    properties = loaded["remote-signing-config"]["properties"]
    assert set(properties) == {"floe.table"}
    legacy = f"{api.uri}/v1/aws/s3/sign"
    body = {"region": "us-east-1", "method": "GET", "uri": uri,
            "headers": {"x-amz-content-sha256": ["UNSIGNED-PAYLOAD"]}}
    r = requests.post(legacy, headers=api.h, json={**body, "properties": properties})
    assert r.status_code == 200, r.text
    sent = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", **{k: v[0] for k, v in r.json()["headers"].items()}}
    assert requests.get(r.json()["uri"], headers=sent).status_code == 200
    assert requests.post(legacy, headers=api.h, json=body).status_code == 400, "no table, no signature"
    t10_scope = properties["floe.table"].rsplit("/", 1)[0] + "/t10"
    r = requests.post(legacy, headers=api.h, json={**body, "properties": {"floe.table": t10_scope}})
    assert r.status_code == 403, "t1's object is outside t10"


def test_the_remote_signer_refuses_to_sign_a_copy_from_outside_the_table(floe, s3, tables):
    """Issue: a PUT inside the table with `x-amz-copy-source` naming another table's object was
    signed (every `x-amz-*` header was), so the signer's keys copied a file the caller may not read."""
    api = Api(floe)
    t1_key, t10_key = key_of(s3, tables[("scope", "t1")]), key_of(s3, tables[("scope", "t10")])
    loaded = requests.get(api.table_url("scope", "t1"),
                          headers={**api.h, "X-Iceberg-Access-Delegation": "remote-signing"}).json()
    sign_url = f"{loaded['config']['s3.signer.uri']}/{loaded['config']['s3.signer.endpoint']}"
    t10_file = s3.keys(t10_key + "/")[0]
    target = f"{s3.endpoint}/{s3.bucket}/{t1_key}/data/stolen.parquet"

    def sign(method, uri, extra):
        return requests.post(sign_url, headers=api.h, json={
            "region": "us-east-1", "method": method, "uri": uri,
            "headers": {"x-amz-content-sha256": ["UNSIGNED-PAYLOAD"], **extra}})

    for extra in ({"x-amz-copy-source": [f"/{s3.bucket}/{t10_file}"]},
                  {"X-Amz-Copy-Source": [f"{s3.bucket}/{t10_file}"], "x-amz-copy-source-range": ["bytes=0-9"]},
                  {"x-amz-acl": ["public-read"]}, {"x-amz-grant-read": ["uri=http://acs.amazonaws.com/groups/global/AllUsers"]}):
        r = sign("PUT", target, extra)
        assert r.status_code == 403, (extra, r.status_code, r.text)
    r = sign("PUT", f"{target}?partNumber=1&uploadId=x", {"x-amz-copy-source": [f"/{s3.bucket}/{t10_file}"]})
    assert r.status_code == 403, r.text
    # The object's own metadata and checksums are still signed.
    r = sign("PUT", target, {"x-amz-meta-writer": ["spark"], "x-amz-checksum-crc32": ["AAAAAA=="]})
    assert r.status_code == 200, r.text
    assert s3.keys(f"{t1_key}/data/stolen") == []


def test_pyiceberg_writes_and_reads_through_the_remote_signer(floe, s3):
    cat = floe.catalog("lake", **{"header.X-Iceberg-Access-Delegation": "remote-signing",
                                  "py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"})
    cat.create_namespace(("signed",))
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    table = cat.create_table(("signed", "t"), schema=data.schema)
    assert table.io.properties.get("s3.remote-signing-enabled") == "true"
    assert "s3.session-token" not in table.io.properties, "signing, not vending"
    table.append(data)
    assert cat.load_table(("signed", "t")).scan().to_arrow().num_rows == 3
    assert s3.keys(key_of(s3, table.location()) + "/data/")


DUCKDB_SCRIPT = r"""
import json, sys, duckdb, duckdb_extensions
uri, ext_dir, client_id, secret, table = sys.argv[1:6]
con = duckdb.connect(config={"extension_directory": ext_dir, "autoinstall_known_extensions": "false"})
for name in ("httpfs", "avro", "aws", "iceberg"):
    duckdb_extensions.import_extension(name, con=con)
    con.execute(f"LOAD {name}")
con.execute(f"CREATE SECRET floe (TYPE iceberg, CLIENT_ID '{client_id}', CLIENT_SECRET '{secret}', OAUTH2_SERVER_URI '{uri}/v1/oauth/tokens')")
con.execute(f"ATTACH 'lake' AS floe (TYPE iceberg, SECRET floe, ENDPOINT '{uri}')")
row = con.execute(f"SELECT count(*), sum(id) FROM floe.{table}").fetchone()
print(json.dumps({"count": row[0], "sum": int(row[1])}))
"""


def run_duckdb(floe, client_id, secret, table, timeout):
    with tempfile.TemporaryDirectory() as ext_dir:
        return subprocess.run([sys.executable, "-c", DUCKDB_SCRIPT, floe.uri, ext_dir, client_id, secret, table],
                              capture_output=True, text=True, timeout=timeout)


def test_duckdb_reads_with_vended_credentials_only(floe, tables):
    out = run_duckdb(floe, ROOT_ID, ROOT_SECRET, "scope.t1", timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"count": 3, "sum": 6}


def test_duckdb_without_data_access_cannot_read(floe, tables):
    viewer = principal_with(floe, "duck-viewer", [(table_resource(Api(floe), "scope", "t1"), "TABLE_READ_METADATA")])
    try:
        out = run_duckdb(floe, viewer.client_id, viewer.secret, "scope.t1", timeout=60)
        assert out.returncode != 0, "DuckDB read a table it holds no data access to"
        assert "403" in out.stderr, out.stderr[-2000:]
    except subprocess.TimeoutExpired:
        pass  # DuckDB hangs instead of failing when S3 refuses it


def test_validate_proves_the_sessions_are_scoped(floe):
    root = Api(floe)
    tenant = root.manage("GET", "/whoami")["tenant_id"]
    report = root.manage("POST", f"/tenants/{tenant}/warehouses/{root.prefix}/validate")
    assert report["ok"], json.dumps(report, indent=1)
    steps = [s["step"] for s in report["steps"]]
    assert "the read-write session cannot write beside the sample table" in steps
    assert "the read-only session cannot delete it" in steps


def test_vended_secrets_are_never_stored_or_logged(floe, s3):
    import uuid
    from pathlib import Path
    api = Api(floe)
    floe.catalog("lake").create_namespace(("idem",))
    body = {"name": "t", "schema": {"type": "struct", "schema-id": 0,
                                     "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}}
    headers = {**api.h, **DELEGATION, "Idempotency-Key": str(uuid.uuid4())}
    url = f"{api.uri}/v1/{api.prefix}/namespaces/idem/tables"
    first = requests.post(url, json=body, headers=headers)
    assert first.status_code == 200, first.text
    config = first.json()["storage-credentials"][0]["config"]
    replay = requests.post(url, json=body, headers=headers)
    assert replay.status_code == 200
    assert replay.json()["metadata-location"] == first.json()["metadata-location"]
    assert "storage-credentials" not in replay.json(), "a replay carries no credentials"
    secrets = [config["s3.session-token"].encode(), config["s3.secret-access-key"].encode(), SECRET_KEY.encode()]
    for path in Path(floe.dir.name).rglob("*"):
        if path.is_file() and path != floe.config:  # the operator's own config file holds its key
            content = path.read_bytes()
            for secret in secrets:
                assert secret not in content, f"a secret is in {path}"


def test_the_readme_example_runs(s3):
    """examples/s3_vending.py (the README's runnable example) succeeds as documented."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "examples" / "s3_vending.py")], cwd=root, timeout=180,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root / "tests" / "e2e")})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "list another table: AccessDenied" in out.stdout


SPARK_SCRIPT = r"""
import json, sys
from pyspark.sql import SparkSession
uri, client, secret, jars, answers = sys.argv[1:6]
spark = (SparkSession.builder.master("local[1]")
         .config("spark.jars", f"{jars}/iceberg-spark-runtime-3.5_2.12-1.10.2.jar,{jars}/iceberg-shaded-deps.jar")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.catalog.rest", "org.apache.iceberg.spark.SparkCatalog")
         .config("spark.sql.catalog.rest.type", "rest")
         .config("spark.sql.catalog.rest.uri", uri)
         .config("spark.sql.catalog.rest.warehouse", "lake")
         .config("spark.sql.catalog.rest.credential", f"{client}:{secret}")
         .config("spark.sql.catalog.rest.oauth2-server-uri", f"{uri}/v1/oauth/tokens")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
jvm = spark._jvm
out = {"namespaces": sorted(r[0] for r in spark.sql("SHOW NAMESPACES IN rest").collect()),
       "tables": sorted(r.tableName for r in spark.sql("SHOW TABLES IN rest.spark").collect()),
       "columns": [r.col_name for r in spark.sql("DESCRIBE TABLE rest.spark.t").collect()]}
# The table as Iceberg Java loaded it: no X-Iceberg-Access-Delegation was configured here, so
# credentials arrive only because /v1/config's defaults told the client to ask for them.
catalog = spark._jsparkSession.sessionState().catalogManager().catalog("rest").icebergCatalog()
table = catalog.loadTable(jvm.org.apache.iceberg.catalog.TableIdentifier.parse("spark.t"))
props = table.io().properties()
out["io"] = {k: props.get(k) for k in ("s3.session-token", "client.refresh-credentials-endpoint", "s3.endpoint")}
# Iceberg Java's own parsers on Floe's load-table and /credentials answers.
raw = json.load(open(answers))
parsers = jvm.org.apache.iceberg.rest.responses
loaded = parsers.LoadTableResponseParser.fromJson(json.dumps(raw["load"]))
creds = parsers.LoadCredentialsResponseParser.fromJson(json.dumps(raw["credentials"]))
out["load_credentials"] = [(c.prefix(), c.config().get("s3.session-token")) for c in loaded.credentials()]
out["credentials"] = [(c.prefix(), c.config().get("s3.access-key-id")) for c in creds.credentials()]
print("RESULT " + json.dumps(out))
"""


def test_iceberg_java_accepts_floes_vended_answers(floe, s3):
    cat = floe.catalog("lake")
    cat.create_namespace(("spark",))
    cat.create_table(("spark", "t"), schema=pa.schema([("id", pa.int64()), ("name", pa.string())]))
    api = Api(floe)
    load = api.load("spark", "t")
    credentials = api.credentials("spark", "t").json()
    d = spark_dir()
    with tempfile.NamedTemporaryFile("w", suffix=".json") as answers:
        json.dump({"load": load, "credentials": credentials}, answers)
        answers.flush()
        out = subprocess.run([str(d / "venv" / "bin" / "python"), "-c", SPARK_SCRIPT, floe.uri, ROOT_ID, ROOT_SECRET,
                              str(d / "jars"), answers.name], capture_output=True, text=True, timeout=300)
    lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stdout[-2000:] + out.stderr[-4000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert "spark" in result["namespaces"] and result["tables"] == ["t"]
    assert result["columns"][:2] == ["id", "name"]
    assert result["io"]["s3.session-token"], "Iceberg Java asked for and kept vended credentials"
    assert result["io"]["client.refresh-credentials-endpoint"].endswith("/tables/t/credentials")
    prefix = load["storage-credentials"][0]["prefix"]
    assert result["load_credentials"] == [[prefix, load["storage-credentials"][0]["config"]["s3.session-token"]]]
    assert result["credentials"] == [[prefix, credentials["storage-credentials"][0]["config"]["s3.access-key-id"]]]


def test_a_304_never_withholds_credentials_the_caller_now_gets(floe, tables):
    """Issue: the load-table ETag ignored the caller's access, so a client that had loaded the
    table without credentials (or before it was granted data access) got 304 and no credentials."""
    root = Api(floe)
    tenant = root.manage("GET", "/whoami")["tenant_id"]
    url = root.table_url("scope", "t1")
    plain = requests.get(url, headers=root.h)
    assert plain.status_code == 200
    vended = requests.get(url, headers={**root.h, **DELEGATION, "If-None-Match": plain.headers["ETag"]})
    assert vended.status_code == 200, "asking for credentials is another answer"
    assert vended.json()["storage-credentials"]
    again = requests.get(url, headers={**root.h, **DELEGATION, "If-None-Match": vended.headers["ETag"]})
    assert again.status_code == 304, "the same question still gets its 304"

    reader = principal_with(floe, "etag-reader", [(table_resource(root, "scope", "t1"), "TABLE_READ_METADATA")])
    first = requests.get(url, headers={**reader.h, **DELEGATION})
    assert first.status_code == 200 and not first.json().get("storage-credentials")
    role = next(r for r in root.manage("GET", f"/tenants/{tenant}/roles")["roles"] if r["name"] == "etag-reader-role")
    root.manage("POST", f"/tenants/{tenant}/grants", {"role_id": role["id"], "privilege": "TABLE_READ_DATA",
                                                      "resource": table_resource(root, "scope", "t1")})
    granted = requests.get(url, headers={**reader.h, **DELEGATION, "If-None-Match": first.headers["ETag"]})
    assert granted.status_code == 200, "new data access is another answer"
    assert granted.json()["storage-credentials"]


def test_a_table_committed_before_vending_fails_is_answered_without_credentials(s3):
    """Issue: create and register vended after committing, so an STS refusal answered 503 for a
    table that now existed, and a client that retried the create got 409."""
    config = vending_config(s3).replace(READ_ROLE, "arn:aws:iam::000000000000:role/NoSuchRole") \
        .replace(WRITE_ROLE, "arn:aws:iam::000000000000:role/NoSuchRoleEither") \
        .replace('key_prefix = "wh"', 'key_prefix = "wh-refused"')
    server = FloeServer(config)
    try:
        api = Api(server)
        requests.post(f"{api.uri}/v1/{api.prefix}/namespaces", json={"namespace": ["refused"]},
                      headers=api.h).raise_for_status()
        body = {"name": "t", "schema": {"type": "struct", "schema-id": 0,
                                         "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}}
        r = requests.post(f"{api.uri}/v1/{api.prefix}/namespaces/refused/tables", json=body,
                          headers={**api.h, **DELEGATION})
        assert r.status_code == 200, r.text
        assert "storage-credentials" not in r.json()
        assert "load the table" in r.headers["Floe-Credentials-Withheld"]
        assert api.load("refused", "t", delegation=False)["metadata-location"] == r.json()["metadata-location"]
    finally:
        server.stop()


def test_a_plan_vends_credentials_for_its_tables_files_only(floe, s3, tables):
    """Planning is a trust decision like load-table: PyIceberg planning on the server reads the
    rows its own planning reads with only vended sessions; the plan's credential reads the files
    the plan names and nothing of a sibling table; a reader without data access is refused; a
    reader of one table's data gets a read-only credential for that table alone and no plan of
    another; the plan id refreshes credentials for its owner only."""
    client = floe.catalog("lake")
    server = floe.catalog("lake", **{"scan-planning-mode": "server"})
    for filters in ({}, {"row_filter": "id >= 2"}):
        mine = sorted(server.load_table(("scope", "t1")).scan(**filters).to_arrow()["id"].to_pylist())
        theirs = sorted(client.load_table(("scope", "t1")).scan(**filters).to_arrow()["id"].to_pylist())
        assert mine == theirs and mine, filters
    root = Api(floe)
    url = root.table_url("scope", "t1") + "/plan"
    r = requests.post(url, headers={**root.h, **DELEGATION}, json={})
    assert r.status_code == 200, r.text
    plan = r.json()
    [cred] = plan["storage-credentials"]
    assert cred["prefix"] == tables[("scope", "t1")] + "/"
    assert cred["config"]["s3.access-key-id"] != ACCESS_KEY, "a session, not the server's keys"
    c = s3.client_with(cred["config"])
    [task] = plan["file-scan-tasks"]
    data_key = key_of(s3, task["data-file"]["file-path"])
    assert c.get_object(Bucket=s3.bucket, Key=data_key)["Body"].read()[:4] == b"PAR1"
    sibling = s3.keys(key_of(s3, tables[("scope", "t10")]) + "/")[0]
    denied(lambda: c.get_object(Bucket=s3.bucket, Key=sibling))
    assert "storage-credentials" not in requests.post(url, headers=root.h, json={}).json()
    r = requests.get(root.table_url("scope", "t1") + "/credentials", headers=root.h,
                     params={"planId": plan["plan-id"]})
    assert r.status_code == 200 and r.json()["storage-credentials"], r.text

    # A principal that may read the table's metadata but not its data gets no plan.
    reader = principal_with(floe, "plan-meta-reader", [(table_resource(root, "scope", "t1"), "TABLE_READ_METADATA")])
    r = requests.post(url, headers={**reader.h, **DELEGATION}, json={})
    assert r.status_code == 403, r.text
    assert "storage-credentials" not in r.text

    # A principal that may read t1's data, and nothing else: its plan's credential reads the
    # planned file and nothing more (no write, no delete, no sibling); t10 is not planned for it;
    # the root's plan id is not its own.
    data_reader = principal_with(floe, "plan-data-reader", [(table_resource(root, "scope", "t1"), "TABLE_READ_DATA")])
    r = requests.post(url, headers={**data_reader.h, **DELEGATION}, json={})
    assert r.status_code == 200, r.text
    [cred] = r.json()["storage-credentials"]
    c = s3.client_with(cred["config"])
    t1 = key_of(s3, tables[("scope", "t1")])
    assert c.get_object(Bucket=s3.bucket, Key=data_key)["Body"].read()[:4] == b"PAR1"
    assert c.list_objects_v2(Bucket=s3.bucket, Prefix=f"{t1}/")["KeyCount"] > 0
    denied(lambda: c.put_object(Bucket=s3.bucket, Key=f"{t1}/data/evil", Body=b"x"))
    denied(lambda: c.delete_object(Bucket=s3.bucket, Key=data_key))
    denied(lambda: c.get_object(Bucket=s3.bucket, Key=sibling))
    denied(lambda: c.list_objects_v2(Bucket=s3.bucket, Prefix=key_of(s3, tables[("scope", "t10")]) + "/"))
    assert s3.keys(f"{t1}/data/evil") == []
    r = requests.post(data_reader.table_url("scope", "t10") + "/plan", headers={**data_reader.h, **DELEGATION}, json={})
    assert r.status_code in (403, 404), r.text
    assert "storage-credentials" not in r.text
    r = requests.get(data_reader.table_url("scope", "t1") + "/credentials", headers=data_reader.h,
                     params={"planId": plan["plan-id"]})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NoSuchPlanIdException", r.text

    # Fetching a plan's result (GET .../plan/{plan-id}) vends as planning does: the root's own
    # plan id gives a credential for t1 alone; the reader cannot fetch the root's plan, and
    # fetching its own gets its read-only credential, not the root's.
    r = requests.get(f"{url}/{plan['plan-id']}", headers={**root.h, **DELEGATION})
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    [cred] = r.json()["storage-credentials"]
    assert cred["prefix"] == tables[("scope", "t1")] + "/"
    denied(lambda: s3.client_with(cred["config"]).get_object(Bucket=s3.bucket, Key=sibling))
    r = requests.get(f"{url}/{plan['plan-id']}", headers={**data_reader.h, **DELEGATION})
    assert r.status_code == 404 and "storage-credentials" not in r.text, r.text
    own = requests.post(url, headers=data_reader.h, json={}).json()["plan-id"]
    r = requests.get(f"{url}/{own}", headers={**data_reader.h, **DELEGATION})
    assert r.status_code == 200, r.text
    [cred] = r.json()["storage-credentials"]
    c = s3.client_with(cred["config"])
    assert c.get_object(Bucket=s3.bucket, Key=data_key)["Body"].read()[:4] == b"PAR1"
    denied(lambda: c.put_object(Bucket=s3.bucket, Key=f"{t1}/data/evil", Body=b"x"))
    denied(lambda: c.get_object(Bucket=s3.bucket, Key=sibling))
