"""ADLS vending against Azurite. Azurite checks the signature, expiry and permissions of container
and blob SAS but has no ADLS Gen2 endpoint and refuses directory SAS, so: a container-scoped
warehouse (explicitly unscoped) proves signatures and permissions end to end, and directory SAS
tokens are checked field for field against the Azure Python SDK's."""

import time
import urllib.parse
from datetime import datetime, timezone

import pyarrow as pa
import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient
from azure.storage.filedatalake import generate_directory_sas

from azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from conftest import FloeServer
from test_s3_vending import Api, principal_with

DELEGATION = {"X-Iceberg-Access-Delegation": "vended-credentials"}
# PyIceberg reads abfss:// with fsspec/adlfs (its pyarrow IO turns `container@account.dfs...` into
# a container name, which Azure refuses).
FSSPEC = {"py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"}


@pytest.fixture(scope="module")
def azurite():
    server = Azurite(containers=("lake", "dirlake"))
    yield server
    server.stop()


def storage(azurite, container, **extra):
    return {"kind": "adls", "account": ACCOUNT, "container": container, "key_prefix": "wh",
            "endpoint": azurite.endpoint, **extra}


@pytest.fixture(scope="module")
def floe(azurite):
    # Presigned URLs live 6 s here, so the expiry Floe signs can be seen enforced.
    server = FloeServer(env={"FLOE_VENDING__PRESIGN_TTL_SECS": "6"})
    root = Api(server, warehouse="demo")
    tenant = root.manage("GET", "/whoami")["tenant_id"]
    root.manage("POST", f"/tenants/{tenant}/storage-credentials",
                {"name": "azurite-key", "kind": "azure-shared-key", "value": {"account_key": ACCOUNT_KEY}})
    # Azurite has no hierarchical namespace: only an explicitly unscoped, container-wide profile.
    root.manage("POST", f"/tenants/{tenant}/warehouses", {
        "name": "azlake", "credential": "azurite-key",
        "storage": storage(azurite, "lake", hierarchical_namespace=False, allow_container_scope=True)})
    # A hierarchical-namespace profile: Floe signs directory SAS tokens (Azurite cannot use them).
    root.manage("POST", f"/tenants/{tenant}/warehouses", {
        "name": "dirlake", "credential": "azurite-key", "storage": storage(azurite, "dirlake")})
    server.tenant = tenant
    yield server
    server.stop()


def api_for(floe, warehouse):
    return Api(floe, warehouse=warehouse)


def sas_fields(token: str) -> dict:
    return dict(urllib.parse.parse_qsl(token.lstrip("?")))


@pytest.fixture(scope="module")
def events(floe):
    cat = floe.catalog("azlake", **FSSPEC)
    cat.create_namespace(("az",))
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    table = cat.create_table(("az", "events"), schema=data.schema)
    table.append(data)
    return table


def test_pyiceberg_writes_and_reads_with_only_vended_sas(floe, azurite, events):
    cat = floe.catalog("azlake", **FSSPEC)  # PyIceberg holds no Azure key: every file access uses the vended SAS
    assert cat.load_table(("az", "events")).scan().to_arrow().num_rows == 3
    prefix = events.location().removeprefix(f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/")
    assert any(n.endswith(".parquet") for n in azurite.names("lake", prefix + "/data/"))
    assert any(n.endswith(".metadata.json") for n in azurite.names("lake", prefix + "/metadata/"))


def test_vended_sas_keys_and_permissions(floe, azurite, events):
    api = api_for(floe, "azlake")
    loaded = requests.get(f"{api.uri}/v1/{api.prefix}/namespaces/az/tables/events", headers={**api.h, **DELEGATION}).json()
    [cred] = loaded["storage-credentials"]
    assert cred["prefix"] == events.location() + "/"
    config = cred["config"]
    host = f"{ACCOUNT}.dfs.core.windows.net"
    token = config[f"adls.sas-token.{host}"]
    assert config["adls.sas-token"] == "?" + token and config[f"adls.sas-token.{ACCOUNT}"] == token
    assert config["adls.account-name"] == ACCOUNT
    assert int(config[f"adls.sas-token-expires-at-ms.{host}"]) > 0
    assert config["adls.refresh-credentials-endpoint"].endswith("/tables/events/credentials")
    fields = sas_fields(token)
    assert fields["sr"] == "c" and fields["sp"] == "racwdl", "writers get a read-write container SAS"
    prefix = events.location().removeprefix(f"abfss://lake@{host}/")

    writer = ContainerClient.from_container_url(f"{azurite.endpoint}/lake", credential=token)
    writer.upload_blob(f"{prefix}/data/probe", b"x")
    sig = fields["sig"]
    forged = ("B" if sig.startswith("A") else "A") + sig[1:]
    tampered = token.split("&sig=")[0] + "&sig=" + urllib.parse.quote(forged, safe="")
    assert tampered != token
    with pytest.raises(HttpResponseError) as e:
        ContainerClient.from_container_url(f"{azurite.endpoint}/lake", credential=tampered).upload_blob(f"{prefix}/data/x", b"x")
    assert e.value.status_code == 403

    reader = principal_with(floe, "az-reader", [({"kind": "table", "warehouse": api.prefix,
                                                  "table": {"namespace": ["az"], "name": "events"}},
                                                 "TABLE_READ_DATA")], warehouse="azlake")
    r = reader.credentials("az", "events")
    assert r.status_code == 200, r.text
    read_token = r.json()["storage-credentials"][0]["config"][f"adls.sas-token.{host}"]
    assert sas_fields(read_token)["sp"] == "rl"
    ro = ContainerClient.from_container_url(f"{azurite.endpoint}/lake", credential=read_token)
    assert ro.download_blob(f"{prefix}/data/probe").readall() == b"x"
    with pytest.raises(HttpResponseError) as e:
        ro.upload_blob(f"{prefix}/data/evil", b"x")
    assert e.value.status_code == 403, "a read-only SAS cannot write"
    with pytest.raises(HttpResponseError) as e:
        ro.delete_blob(f"{prefix}/data/probe")
    assert e.value.status_code == 403, "a read-only SAS cannot delete"


def test_directory_sas_equals_the_azure_sdks(floe):
    cat = floe.catalog("dirlake")
    cat.create_namespace(("d",))
    table = cat.create_table(("d", "t"), schema=pa.schema([("id", pa.int64())]))
    api = api_for(floe, "dirlake")
    r = requests.get(f"{api.uri}/v1/{api.prefix}/namespaces/d/tables/t/credentials", headers=api.h)
    assert r.status_code == 200, r.text
    config = r.json()["storage-credentials"][0]["config"]
    token = config[f"adls.sas-token.{ACCOUNT}.dfs.core.windows.net"]
    fields = sas_fields(token)
    directory = table.location().removeprefix(f"abfss://dirlake@{ACCOUNT}.dfs.core.windows.net/")
    assert fields["sr"] == "d" and fields["sdd"] == str(len(directory.split("/")))
    parse = lambda t: datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    expected = generate_directory_sas(ACCOUNT, "dirlake", directory, ACCOUNT_KEY, permission=fields["sp"],
                                      start=parse(fields["st"]), expiry=parse(fields["se"]), protocol=fields["spr"])
    assert token == expected


def test_presigned_blob_urls_reach_one_file_inside_the_table(floe, azurite, events):
    api = api_for(floe, "azlake")
    url = f"{api.uri}/v1/{api.prefix}/namespaces/az/tables/events/presign"
    prefix = events.location().removeprefix(f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/")
    name = next(n for n in azurite.names("lake", prefix + "/metadata/") if n.endswith(".metadata.json"))
    location = f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/{name}"
    r = requests.get(url, params={"location": location}, headers=api.h)
    assert r.status_code == 200, r.text
    got = requests.get(r.json()["url"])
    assert got.status_code == 200
    assert got.content == azurite.client.get_blob_client("lake", name).download_blob().readall()
    assert sas_fields(urllib.parse.urlparse(r.json()["url"]).query)["sr"] == "b"
    for bad in [events.location() + "0/x", events.location() + "/../other/x", events.location(),
                f"abfss://dirlake@{ACCOUNT}.dfs.core.windows.net/{name}"]:
        assert requests.get(url, params={"location": bad}, headers=api.h).status_code == 403, bad


def test_azurite_enforces_the_expiry_floe_signs(floe, azurite, events):
    api = api_for(floe, "azlake")
    prefix = events.location().removeprefix(f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/")
    name = azurite.names("lake", prefix + "/metadata/")[0]
    r = requests.get(f"{api.uri}/v1/{api.prefix}/namespaces/az/tables/events/presign",
                     params={"location": f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/{name}"}, headers=api.h)
    url = r.json()["url"]
    assert requests.get(url).status_code == 200
    time.sleep(7)
    assert requests.get(url).status_code == 403, "an expired SAS is refused"


def test_validate_checks_the_sas_and_flags_container_scope(floe):
    api = api_for(floe, "azlake")
    report = api.manage("POST", f"/tenants/{floe.tenant}/warehouses/{api.prefix}/validate")
    assert report["ok"], report
    assert any("UNSCOPED" in w for w in report["warnings"])
    assert "the read-only SAS cannot write" in [s["step"] for s in report["steps"]]


def test_unscoped_profiles_must_be_explicit(floe, azurite):
    api = api_for(floe, "azlake")
    r = requests.post(f"{floe.uri}/management/v1/tenants/{floe.tenant}/warehouses", headers=api.h, json={
        "name": "nope", "credential": "azurite-key",
        "storage": storage(azurite, "lake", hierarchical_namespace=False)})
    assert r.status_code == 400 and "allow_container_scope" in r.json()["error"]["message"]
