"""A tenant admin's workflow with a Python client generated from the committed OpenAPI document
(openapi-python-client), then PyIceberg as the new principal: it sees its own tenant's warehouse and
nothing of the default tenant."""

import importlib
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.exceptions import RESTError

from conftest import ROOT_ID, ROOT_SECRET

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def floe_client(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "openapi-python-client"), "generate", "--path", str(REPO / "openapi" / "floe.json"),
                    "--meta", "none", "--output-path", str(out / "floe_client")],
                   check=True, capture_output=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    sys.path.insert(0, str(out))
    yield importlib.import_module("floe_client")
    sys.path.remove(str(out))


def root_token(floe):
    import requests
    r = requests.post(f"{floe.uri}/v1/oauth/tokens", data={
        "grant_type": "client_credentials", "client_id": ROOT_ID, "client_secret": ROOT_SECRET})
    return r.json()["access_token"]


def test_generated_client_sets_up_a_tenant_and_pyiceberg_sees_only_it(floe, floe_client):
    from floe_client import AuthenticatedClient
    from floe_client.api.management_api import (assign_role, create_grant, create_principal, create_role,
                                                create_tenant, create_warehouse, whoami)
    # Unions have named variants: LocalStorage / S3Storage / ..., WarehouseResource / TableResource / ...
    from floe_client.models import (CreateGrantRequest, CreatePrincipalRequest, CreateRoleRequest,
                                    CreateWarehouseRequest, LocalStorage, LocalStorageKind, PrincipalCredentials,
                                    Privilege, RoleInfo, TenantInfo, TenantRequest, WarehouseInfo,
                                    WarehouseResource, WarehouseResourceKind)

    root = AuthenticatedClient(base_url=floe.uri, token=root_token(floe))
    tenant = create_tenant.sync(client=root, body=TenantRequest(name="analytics"))
    assert isinstance(tenant, TenantInfo), tenant
    warehouse = create_warehouse.sync(client=root, tenant=tenant.id, body=CreateWarehouseRequest(
        name="lake", storage=LocalStorage(kind=LocalStorageKind.LOCAL)))
    assert isinstance(warehouse, WarehouseInfo), warehouse
    creds = create_principal.sync(client=root, tenant=tenant.id, body=CreatePrincipalRequest(name="etl"))
    assert isinstance(creds, PrincipalCredentials), creds
    role = create_role.sync(client=root, tenant=tenant.id, body=CreateRoleRequest(name="lake-admins"))
    assert isinstance(role, RoleInfo), role
    resource = WarehouseResource(kind=WarehouseResourceKind.WAREHOUSE, warehouse=warehouse.id)
    grant = create_grant.sync(client=root, tenant=tenant.id, body=CreateGrantRequest(
        role_id=role.id, resource=resource, privilege=Privilege.WAREHOUSE_ADMIN))
    assert grant.privilege == Privilege.WAREHOUSE_ADMIN, grant
    assert assign_role.sync_detailed(client=root, tenant=tenant.id, role=role.id, principal=creds.principal.id).status_code == 204

    token = principal_token(floe, creds)
    me = whoami.sync(client=AuthenticatedClient(base_url=floe.uri, token=token))
    assert (me.tenant_name, me.roles) == ("analytics", ["lake-admins"]), me

    # PyIceberg, as the new principal, works in its warehouse...
    cat = floe.catalog("lake", credential=f"{creds.client_id}:{creds.client_secret}")
    cat.create_namespace("raw")
    table = cat.create_table("raw.events", schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([1, 2], pa.int64())}))
    assert cat.load_table("raw.events").scan().to_arrow().num_rows == 2
    assert cat.list_namespaces() == [("raw",)]
    # ...and cannot reach the default tenant's `demo` warehouse, by name or by prefix.
    with pytest.raises(RESTError):
        floe.catalog("demo", credential=f"{creds.client_id}:{creds.client_secret}")
    demo = floe.catalog("demo")
    demo.create_namespace("private")
    import requests
    r = requests.get(f"{floe.uri}/v1/{demo.properties['prefix']}/namespaces", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NoSuchWarehouseException"


def principal_token(floe, creds):
    import requests
    r = requests.post(f"{floe.uri}/v1/oauth/tokens", auth=(creds.client_id, creds.client_secret),
                      data={"grant_type": "client_credentials", "scope": "catalog"})
    return r.json()["access_token"]
