"""GCS vending. gcp-storage-emulator serves the bucket but ignores authorization, and Google's STS
cannot run here, so a local HTTP server plays Google's OAuth token endpoint and STS token exchange
(real wire format) and records what Floe sends: the tests check the credential access boundary,
and that V4 signed URLs equal the ones the Google Cloud Storage Python client makes."""

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import FloeServer, JsonServer, free_port
from test_s3_vending import Api, principal_with

PROJECT = "floe-test"


class MockGoogle(JsonServer):
    """Google's OAuth token endpoint (`/token`) and STS token exchange (`/sts`)."""

    def __init__(self):
        super().__init__(self.answer)

    @property
    def tokens(self):
        return [form for path, form in self.requests if path == "/token"]

    @property
    def exchanges(self):
        return [form for path, form in self.requests if path == "/sts"]

    def answer(self, path, form):
        if path == "/token":
            # The first token is nearly spent: too old to downscope (the margin is 300 s).
            lifetime = 100 if len(self.tokens) == 1 else 3600
            return {"access_token": f"source-token-{len(self.tokens)}", "token_type": "Bearer",
                    "expires_in": lifetime}
        if path == "/sts-refuses":
            return 403, {"error": "invalid_grant", "error_description": "The caller lacks permission on the bucket"}
        if path == "/sts-throttled":
            return 429, {"error": "rate_limit_exceeded"}
        if path == "/sts":
            return {"access_token": f"downscoped-{len(self.exchanges)}", "token_type": "Bearer",
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "expires_in": 3599}
        return None


@pytest.fixture(scope="module")
def google():
    server = MockGoogle()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def emulator():
    port = free_port()
    exe = shutil.which("gcp-storage-emulator", path=str(Path(sys.executable).parent))
    proc = subprocess.Popen([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                             "--default-bucket", "lake"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            requests.get(f"{url}/storage/v1/b", timeout=1)
            break
        except requests.RequestException:
            assert time.time() < deadline and proc.poll() is None, "gcp-storage-emulator did not start"
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait()


@pytest.fixture(scope="module")
def service_account(google):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "private_key": pem,
            "client_email": f"floe@{PROJECT}.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": f"{google.url}/token"}


@pytest.fixture(scope="module")
def floe(emulator, google, service_account):
    server = FloeServer()
    root = Api(server, warehouse="demo")
    tenant = root.manage("GET", "/whoami")["tenant_id"]
    root.manage("POST", f"/tenants/{tenant}/storage-credentials", {
        "name": "gcs-sa", "kind": "gcs-service-account",
        "value": {"service_account_json": json.dumps(service_account)}})
    root.manage("POST", f"/tenants/{tenant}/warehouses", {
        "name": "gcslake", "credential": "gcs-sa",
        "storage": {"kind": "gcs", "bucket": "lake", "key_prefix": "wh", "project_id": PROJECT,
                    "endpoint": emulator, "sts_endpoint": f"{google.url}/sts"}})
    server.tenant = tenant
    server.gcs_endpoint = emulator
    yield server
    server.stop()


def boundary_of(exchange):
    return json.loads(exchange["options"])["accessBoundary"]["accessBoundaryRules"]


def test_pyiceberg_works_with_downscoped_tokens(floe, google):
    cat = floe.catalog("gcslake")  # no Google credentials of its own
    cat.create_namespace(("g",))
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    table = cat.create_table(("g", "events"), schema=data.schema)
    table.append(data)
    assert cat.load_table(("g", "events")).scan().to_arrow().num_rows == 3
    assert table.io.properties["gcs.oauth2.token"].startswith("downscoped-")
    assert google.tokens and "source-token-1" not in [e["subject_token"] for e in google.exchanges], \
        "a source token with less than the refresh margin left is replaced before it is downscoped"


def test_boundaries_name_the_table_prefix_and_the_role(floe, google):
    cat = floe.catalog("gcslake")
    cat.create_namespace(("b",))
    table = cat.create_table(("b", "t"), schema=pa.schema([("id", pa.int64())]))
    api = Api(floe, warehouse="gcslake")
    r = api.credentials("b", "t")
    assert r.status_code == 200, r.text
    [cred] = r.json()["storage-credentials"]
    assert cred["prefix"] == table.location() + "/"
    config = cred["config"]
    # The token is the one the mock STS issued; find the exchange that produced it.
    assert config["gcs.oauth2.token"].startswith("downscoped-")
    exchange = google.exchanges[int(config["gcs.oauth2.token"].split("-")[1]) - 1]
    assert int(config["gcs.oauth2.token-expires-at"]) > time.time() * 1000 + 3_000_000
    assert config["gcs.project-id"] == PROJECT
    assert config["gcs.oauth2.refresh-credentials-endpoint"].endswith("/tables/t/credentials")

    assert exchange["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert exchange["subject_token"].startswith("source-token-")
    assert exchange["subject_token_type"] == exchange["requested_token_type"] == \
        "urn:ietf:params:oauth:token-type:access_token"
    [rule] = boundary_of(exchange)
    assert rule["availableResource"] == "//storage.googleapis.com/projects/_/buckets/lake"
    assert rule["availablePermissions"] == ["inRole:roles/storage.objectAdmin"]
    name = table.location().removeprefix("gs://lake/") + "/"
    expr = rule["availabilityCondition"]["expression"]
    assert f"resource.name.startsWith('projects/_/buckets/lake/objects/{name}')" in expr
    assert f".startsWith('{name}')" in expr, "lists are limited to the prefix too"

    reader = principal_with(floe, "gcs-reader", [({"kind": "table", "warehouse": api.prefix,
                                                    "table": {"namespace": ["b"], "name": "t"}}, "TABLE_READ_DATA")],
                            warehouse="gcslake")
    assert reader.credentials("b", "t").status_code == 200
    assert boundary_of(google.exchanges[-1])[0]["availablePermissions"] == ["inRole:roles/storage.objectViewer"]


def test_quotes_and_backslashes_cannot_break_out_of_the_condition(floe, google):
    cat = floe.catalog("gcslake")
    cat.create_namespace(("q",))
    tricky = "gs://lake/wh/it's') || true || ('x"
    cat.create_table(("q", "t"), schema=pa.schema([("id", pa.int64())]), location=tricky)
    assert Api(floe, warehouse="gcslake").credentials("q", "t").status_code == 200
    expr = boundary_of(google.exchanges[-1])[0]["availabilityCondition"]["expression"]
    assert "startsWith('projects/_/buckets/lake/objects/wh/it\\'s\\') || true || (\\'x/')" in expr, expr


def test_signed_urls_equal_the_google_clients(floe, service_account):
    from google.cloud.storage._signing import generate_signed_url_v4
    from google.oauth2 import service_account as sa

    cat = floe.catalog("gcslake")
    cat.create_namespace(("s",))
    table = cat.create_table(("s", "t"), schema=pa.schema([("id", pa.int64())]))
    api = Api(floe, warehouse="gcslake")
    url = f"{api.uri}/v1/{api.prefix}/namespaces/s/tables/t/presign"
    location = f"{table.location()}/data/part 1 (a).parquet"
    r = requests.get(url, params={"location": location}, headers=api.h)
    assert r.status_code == 200, r.text
    signed = r.json()["url"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(signed).query))
    expected = generate_signed_url_v4(
        sa.Credentials.from_service_account_info(service_account),
        "/lake/" + urllib.parse.quote(location.removeprefix("gs://lake/")),
        expiration=timedelta(seconds=int(query["X-Goog-Expires"])), method="GET",
        _request_timestamp=query["X-Goog-Date"])
    assert signed == expected
    for bad in [table.location() + "0/x", table.location() + "/../x", "gs://other/wh/x"]:
        assert requests.get(url, params={"location": bad}, headers=api.h).status_code == 403, bad


def test_validate_reports_each_step_truthfully(floe):
    api = Api(floe, warehouse="gcslake")
    report = api.manage("POST", f"/tenants/{floe.tenant}/warehouses/{api.prefix}/validate")
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["write probe"]["ok"] and steps["read probe"]["ok"]
    assert steps["exchange a read-only downscoped token for a sample table"]["ok"]
    assert steps["read a file of the sample table with the token"]["ok"]
    # gcp-storage-emulator ignores tokens, so the boundary is not enforced here, and validate says so.
    beside = steps["the read-only token cannot write beside the sample table"]
    assert not beside["ok"] and "does not enforce" in beside["detail"]
    assert not report["ok"]


def test_a_token_service_refusal_is_a_misconfiguration_and_throttling_is_worth_retrying(floe, google):
    """Google's STS answering 403 refuses the server's own account: 500 ServiceMisconfigured without
    Retry-After. Answering 429 is trouble: 503 with Retry-After. Neither body names the upstream."""
    root = Api(floe, warehouse="demo")
    for name, path in (("gcsrefused", "/sts-refuses"), ("gcsthrottled", "/sts-throttled")):
        root.manage("POST", f"/tenants/{floe.tenant}/warehouses", {
            "name": name, "credential": "gcs-sa",
            "storage": {"kind": "gcs", "bucket": "lake", "key_prefix": name, "project_id": PROJECT,
                        "endpoint": floe.gcs_endpoint, "sts_endpoint": f"{google.url}{path}"}})
    answers = {}
    for name in ("gcsrefused", "gcsthrottled"):
        api = Api(floe, warehouse=name)
        base = f"{api.uri}/v1/{api.prefix}/namespaces"
        assert requests.post(base, headers=api.h, json={"namespace": ["n"]}).status_code == 200
        r = requests.post(f"{base}/n/tables", headers=api.h, json={"name": "t", "schema": {
            "type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}})
        assert r.status_code == 200, r.text
        answers[name] = requests.get(api.table_url("n", "t"),
                                     headers={**api.h, "X-Iceberg-Access-Delegation": "vended-credentials"})
    refused, throttled = answers["gcsrefused"], answers["gcsthrottled"]
    assert refused.status_code == 500, refused.text
    assert refused.json()["error"]["type"] == "ServiceMisconfiguredException"
    assert "an operator must fix" in refused.json()["error"]["message"]
    assert "Retry-After" not in refused.headers
    assert throttled.status_code == 503, throttled.text
    assert throttled.headers.get("Retry-After") == "1"
    for r in (refused, throttled):
        assert google.url not in r.text and "invalid_grant" not in r.text and "/sts" not in r.text, r.text
        assert r.json()["error"]["request-id"], r.text
