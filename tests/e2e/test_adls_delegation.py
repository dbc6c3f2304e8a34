"""ADLS with Entra ID client credentials: Floe gets a token from Entra ID (a local stand-in speaking
its token endpoint's wire format: no Entra ID runs here), fetches a user-delegation key from Azurite
(HTTPS with OAuth, which checks the token's issuer, audience and lifetime) and signs user-delegation
SAS tokens, which Azurite verifies for every request."""

import base64
import json
import os
import time
import urllib.parse
import uuid

import pyarrow as pa
import requests
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from azurite import ACCOUNT, Azurite
from conftest import FloeServer, JsonServer
from test_s3_vending import Api, principal_with

TENANT_ID = str(uuid.uuid4())
OBJECT_ID = str(uuid.uuid4())


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class MockEntra(JsonServer):
    """`POST /{tenant}/oauth2/v2.0/token` (client credentials) answering a storage-audience token."""

    def __init__(self):
        super().__init__(self.answer)

    @staticmethod
    def answer(path, form):
        if form.get("client_secret") == "wrong-secret":
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret"}
        if form.get("client_secret") == "busy-secret":
            return 503, {"error": "temporarily_unavailable"}
        now = int(time.time())
        claims = {"aud": "https://storage.azure.com", "iss": f"https://sts.windows.net/{TENANT_ID}/",
                  "oid": OBJECT_ID, "tid": TENANT_ID, "iat": now, "nbf": now - 60, "exp": now + 3600}
        token = f"{b64url({'alg': 'RS256', 'typ': 'JWT'})}.{b64url(claims)}.c2ln"
        return {"token_type": "Bearer", "expires_in": 3599, "access_token": token}


@pytest.fixture(scope="module")
def azurite():
    server = Azurite(containers=("lake",), oauth=True)
    # Every client in this module (Floe, adlfs, the Azure SDK) trusts Azurite's certificate.
    saved = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = server.ca_bundle
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture(scope="module")
def entra():
    server = MockEntra()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def floe(azurite, entra):
    server = FloeServer(env={"SSL_CERT_FILE": azurite.ca_bundle})
    root = Api(server, warehouse="demo")
    tenant = root.manage("GET", "/whoami")["tenant_id"]
    root.manage("POST", f"/tenants/{tenant}/storage-credentials", {
        "name": "entra-app", "kind": "azure-client-secret",
        "value": {"tenant_id": TENANT_ID, "client_id": "floe-app", "client_secret": "app-secret"}})
    root.manage("POST", f"/tenants/{tenant}/warehouses", {
        "name": "udlake", "credential": "entra-app",
        "storage": {"kind": "adls", "account": ACCOUNT, "container": "lake", "key_prefix": "wh",
                    "endpoint": azurite.endpoint, "hierarchical_namespace": False, "allow_container_scope": True,
                    "authority_host": entra.url}})
    yield server
    server.stop()


def test_user_delegation_sas_end_to_end(floe, azurite, entra):
    # Floe writes the table's metadata to Azurite with a user-delegation SAS of its own.
    cat = floe.catalog("udlake")
    cat.create_namespace(("ud",))
    table = cat.create_table(("ud", "t"), schema=pa.schema([("id", pa.int64())]))
    assert cat.load_table(("ud", "t")).metadata_location.startswith(table.location())

    path, form = entra.requests[0]
    assert path == f"/{TENANT_ID}/oauth2/v2.0/token"
    assert form["grant_type"] == "client_credentials" and form["client_id"] == "floe-app"
    assert form["scope"] == "https://storage.azure.com/.default"

    api = Api(floe, warehouse="udlake")
    prefix = table.location().removeprefix(f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/")
    writer_token = api.credentials("ud", "t").json()["storage-credentials"][0]["config"]["adls.sas-token"]
    rw = ContainerClient.from_container_url(f"{azurite.endpoint}/lake", credential=writer_token.lstrip("?"),
                         connection_verify=azurite.ca_bundle)
    rw.upload_blob(f"{prefix}/data/part-0.parquet", b"data")
    reader = principal_with(floe, "ud-reader", [({"kind": "table", "warehouse": api.prefix,
                                                  "table": {"namespace": ["ud"], "name": "t"}}, "TABLE_READ_DATA")],
                            warehouse="udlake")
    r = reader.credentials("ud", "t")
    assert r.status_code == 200, r.text
    token = r.json()["storage-credentials"][0]["config"][f"adls.sas-token.{ACCOUNT}.dfs.core.windows.net"]
    fields = dict(urllib.parse.parse_qsl(token))
    assert fields["skoid"] == OBJECT_ID and fields["sktid"] == TENANT_ID and fields["sp"] == "rl"
    ro = ContainerClient.from_container_url(f"{azurite.endpoint}/lake", credential=token, connection_verify=azurite.ca_bundle)
    names = [b.name for b in ro.list_blobs(name_starts_with=prefix + "/")]
    assert any(n.endswith(".parquet") for n in names), "the user-delegation SAS reads"
    with pytest.raises(HttpResponseError) as e:
        ro.upload_blob(f"{prefix}/data/evil", b"x")
    assert e.value.status_code == 403, "a read-only user-delegation SAS cannot write"
    tampered = token.replace(f"skoid={OBJECT_ID}", f"skoid={uuid.uuid4()}")
    with pytest.raises(HttpResponseError) as e:
        ContainerClient.from_container_url(f"{azurite.endpoint}/lake", credential=tampered,
                        connection_verify=azurite.ca_bundle).get_blob_client(names[0]).download_blob()
    assert e.value.status_code == 403, "a key id that does not match the signature is refused"


def test_entra_refusing_the_server_is_a_misconfiguration_and_its_trouble_is_worth_retrying(floe, azurite, entra):
    """Entra ID rejecting the application's secret (401) is the warehouse's setup: 500
    ServiceMisconfigured without Retry-After. Entra ID answering 503 is trouble: 503 with
    Retry-After. Neither body names the application, the secret or Entra ID's address."""
    root = Api(floe, warehouse="demo")
    tenant = root.manage("GET", "/whoami")["tenant_id"]
    for name, secret in (("entra-wrong", "wrong-secret"), ("entra-busy", "busy-secret")):
        root.manage("POST", f"/tenants/{tenant}/storage-credentials", {
            "name": name, "kind": "azure-client-secret",
            "value": {"tenant_id": TENANT_ID, "client_id": f"{name}-app", "client_secret": secret}})
        root.manage("POST", f"/tenants/{tenant}/warehouses", {
            "name": f"{name}-lake", "credential": name,
            "storage": {"kind": "adls", "account": ACCOUNT, "container": "lake", "key_prefix": name,
                        "endpoint": azurite.endpoint, "hierarchical_namespace": False, "allow_container_scope": True,
                        "authority_host": entra.url}})
    answers = {}
    for name in ("entra-wrong", "entra-busy"):
        api = Api(floe, warehouse=f"{name}-lake")
        base = f"{api.uri}/v1/{api.prefix}/namespaces"
        assert requests.post(base, headers=api.h, json={"namespace": ["n"]}).status_code == 200
        answers[name] = requests.post(f"{base}/n/tables", headers=api.h, json={"name": "t", "schema": {
            "type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}})
    wrong, busy = answers["entra-wrong"], answers["entra-busy"]
    assert wrong.status_code == 500, wrong.text
    assert wrong.json()["error"]["type"] == "ServiceMisconfiguredException", wrong.text
    assert "an operator must fix" in wrong.json()["error"]["message"]
    assert "Retry-After" not in wrong.headers
    assert busy.status_code == 503, busy.text
    assert busy.headers.get("Retry-After") == "1"
    for r in (wrong, busy):
        assert "-app" not in r.text and "secret" not in r.text and entra.url not in r.text, r.text
        assert len(r.text) < 600 and r.json()["error"]["request-id"], r.text
