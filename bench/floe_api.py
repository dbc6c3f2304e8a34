"""The few calls of Floe's API the benchmarks make to set themselves up."""

import json
import urllib.request


def call(uri, method, path, token=None, body=None, form=None):
    data = json.dumps(body).encode() if body is not None else form.encode() if form else None
    req = urllib.request.Request(f"{uri}{path}", data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as r:
        text = r.read()
    return json.loads(text) if text else None


def token_of(uri, cid, secret):
    return call(uri, "POST", "/v1/oauth/tokens",
                form=f"grant_type=client_credentials&client_id={cid}&client_secret={secret}")["access_token"]


def tenant_with_table(uri, root, name):
    """A tenant with a warehouse, a table, and a reader whose token is returned with the URL."""
    t = call(uri, "POST", "/management/v1/tenants", root, {"name": name})
    wh = call(uri, "POST", f"/management/v1/tenants/{t['id']}/warehouses", root,
              {"name": "wh", "storage": {"kind": "local"}})
    p = call(uri, "POST", f"/management/v1/tenants/{t['id']}/principals", root, {"name": "reader"})
    role = call(uri, "POST", f"/management/v1/tenants/{t['id']}/roles", root, {"name": "readers"})
    call(uri, "POST", f"/management/v1/tenants/{t['id']}/grants", root,
         {"role_id": role["id"], "resource": {"kind": "tenant"}, "privilege": "TENANT_ADMIN"})
    call(uri, "PUT", f"/management/v1/tenants/{t['id']}/roles/{role['id']}/principals/{p['principal']['id']}", root)
    token = token_of(uri, p["client_id"], p["client_secret"])
    base = f"/v1/{wh['id']}/namespaces"
    call(uri, "POST", base, token, {"namespace": ["n"]})
    schema = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
    call(uri, "POST", f"{base}/n/tables", token, {"name": "t", "schema": schema})
    return f"{uri}{base}/n/tables/t", token
