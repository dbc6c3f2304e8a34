"""Issue 23's escapes that need real vended credentials, tried against SeaweedFS with STS and
enforced session policies: what an attacker holding legitimate credentials got for another
table's files through a staged create, a rewritten metadata file and the remote signer."""

import hashlib
import json
import time
import urllib.parse
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from botocore.exceptions import ClientError

from conftest import FloeServer, stop_process
from seaweed import ACCESS_KEY, READ_ROLE, SECRET_KEY, WRITE_ROLE, SeaweedS3
from test_s3_vending import DELEGATION, Api, denied, key_of, principal_with, s3  # noqa: F401 (s3: the SeaweedFS fixture)

NAMESPACE = lambda api, ns: {"kind": "namespace", "warehouse": api.prefix, "namespace": [ns]}


def config(s3):
    """`lake` vends STS sessions; `signed` signs with the server's own keys (no role)."""
    return f"""
[[warehouses]]
name = "lake"
storage = {{ kind = "s3", bucket = "{s3.bucket}", key_prefix = "wh", region = "us-east-1", endpoint = "{s3.endpoint}", path_style = true, sts_endpoint = "{s3.endpoint}", read_role_arn = "{READ_ROLE}", write_role_arn = "{WRITE_ROLE}", session_duration_secs = 900, remote_signing = true }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"

[[warehouses]]
name = "signed"
storage = {{ kind = "s3", bucket = "{s3.bucket}", key_prefix = "signed", region = "us-east-1", endpoint = "{s3.endpoint}", path_style = true, remote_signing = true }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
"""


@pytest.fixture(scope="module")
def floe(s3):
    server = FloeServer(config(s3))
    yield server
    server.stop()


DATA = pa.table({"id": pa.array([1, 2, 3], pa.int64())})


def victim_table(floe, warehouse, location=None):
    """`victim.payroll` (with a data file) and an empty namespace `att` in `warehouse`."""
    cat = floe.catalog(warehouse)
    cat.create_namespace(("victim",))
    cat.create_namespace(("att",))
    t = cat.create_table(("victim", "payroll"), schema=DATA.schema, location=location)
    t.append(DATA)
    return t.location()


def test_a_staged_create_is_never_vended_another_tables_files(floe, s3):
    """Escape 1: `stage-create` at, inside or above the victim's location answered 200 with an STS
    session for it: the attacker read the victim's data, wrote into its `data/` and listed it."""
    victim = victim_table(floe, "lake", f"s3://{s3.bucket}/wh/shared/payroll")
    victim_key = key_of(s3, victim)
    victim_file = [k for k in s3.keys(victim_key + "/") if "/data/" in k][0]
    root = Api(floe, warehouse="lake")
    attacker = principal_with(floe, "stager", [(NAMESPACE(root, "att"), "TABLE_CREATE"),
                                               (NAMESPACE(root, "att"), "TABLE_WRITE_DATA")])
    url = f"{attacker.uri}/v1/{attacker.prefix}/namespaces/att/tables"

    def stage(location):
        return requests.post(url, headers={**attacker.h, **DELEGATION}, json={
            "name": "s", "location": location, "stage-create": True,
            "schema": {"type": "struct", "schema-id": 0, "fields": [
                {"id": 1, "name": "id", "type": "long", "required": False}]}})

    for location in [victim, f"{victim}/data", f"s3://{s3.bucket}/wh/shared"]:
        r = stage(location)
        assert r.status_code == 400, (location, r.status_code, r.text)
        assert "storage-credentials" not in r.text and "session-token" not in r.text
    # Its own staged table gets a session for its own location only.
    mine = f"s3://{s3.bucket}/wh/att-own/s"
    r = stage(mine)
    assert r.status_code == 200, r.text
    [cred] = r.json()["storage-credentials"]
    assert cred["prefix"] == mine + "/"
    c = s3.client_with(cred["config"])
    c.put_object(Bucket=s3.bucket, Key=key_of(s3, mine) + "/data/x", Body=b"x")
    denied(lambda: c.get_object(Bucket=s3.bucket, Key=victim_file))
    denied(lambda: c.put_object(Bucket=s3.bucket, Key=f"{victim_key}/data/evil", Body=b"x"))
    denied(lambda: c.list_objects_v2(Bucket=s3.bucket, Prefix=f"{victim_key}/"))
    # Reserved: nobody else's stage or table takes it meanwhile.
    assert stage(mine).status_code == 400


def test_a_rewritten_metadata_file_vends_nothing(s3):
    """Escape 2: a writer overwrote its table's current metadata file with the victim's location;
    once the metadata cache was cold, load-table, /credentials, presign and the signer on its own
    table all reached the victim's files."""
    server = FloeServer(config(s3))
    try:
        victim = victim_table(server, "lake")
        victim_file = [k for k in s3.keys(key_of(s3, victim) + "/") if "/data/" in k][0]
        cat = server.catalog("lake")
        mine = cat.create_table(("att", "mine"), schema=DATA.schema)
        mine.append(DATA)
        root = Api(server, warehouse="lake")
        writer = principal_with(server, "writer", [
            ({"kind": "table", "warehouse": root.prefix, "table": {"namespace": ["att"], "name": "mine"}},
             "TABLE_WRITE_DATA")], warehouse="lake")
        loaded = writer.load("att", "mine")
        [cred] = loaded["storage-credentials"]
        c = s3.client_with(cred["config"])
        key = key_of(s3, loaded["metadata-location"])
        metadata = json.loads(c.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
        metadata["location"] = victim
        c.put_object(Bucket=s3.bucket, Key=key, Body=json.dumps(metadata).encode())
        # A restart: the metadata cache is cold.
        stop_process(server.proc)
        server.start()
        writer = Api(server, writer.client_id, writer.secret, "lake")
        table_url = writer.table_url("att", "mine")
        answers = [
            requests.get(table_url, headers={**writer.h, **DELEGATION}),
            requests.get(table_url + "/credentials", headers=writer.h),
            requests.get(table_url + "/presign", headers=writer.h,
                         params={"location": f"s3://{s3.bucket}/{victim_file}"}),
            requests.post(table_url + "/sign", headers=writer.h, json={
                "region": "us-east-1", "method": "GET",
                "uri": f"{s3.endpoint}/{s3.bucket}/{victim_file}", "headers": {}}),
        ]
        for r in answers:
            assert r.status_code == 500, (r.request.url, r.status_code, r.text)
            assert "not served" in r.json()["error"]["message"]
            assert "session-token" not in r.text and "X-Amz-Signature" not in r.text
        # The victim's table is untouched and still served.
        assert root.load("victim", "payroll")["metadata"]["location"] == victim
    finally:
        server.stop()


def test_the_signer_signs_exactly_what_it_checked(floe, s3):
    """Escape 3: on a warehouse signing with its own keys, a DeleteObjects naming only the
    caller's key was signed over UNSIGNED-PAYLOAD (or a client's hash of another body), and a body
    naming other tables' keys was sent with it: SeaweedFS deleted them. A client `host`, a raw
    `..` path and a second `prefix` were signed as given."""
    # PyArrow's FileIO cannot sign remotely: the data files are put with the server's keys.
    cat = floe.catalog("signed")
    cat.create_namespace(("victim",))
    cat.create_namespace(("att",))
    victim = cat.create_table(("victim", "payroll"), schema=DATA.schema).location()
    victim_file = key_of(s3, victim) + "/data/payroll.parquet"
    mine_key = key_of(s3, cat.create_table(("att", "mine"), schema=DATA.schema).location())
    own_file = mine_key + "/data/mine.parquet"
    for key in (victim_file, own_file, mine_key + "/data/left.parquet"):
        s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"PAR1")
    api = Api(floe, warehouse="signed")
    loaded = requests.get(api.table_url("att", "mine"),
                          headers={**api.h, "X-Iceberg-Access-Delegation": "remote-signing"}).json()
    assert "storage-credentials" not in loaded
    sign_url = f"{loaded['config']['s3.signer.uri']}/{loaded['config']['s3.signer.endpoint']}"

    def sign(method, uri, body=None, headers=None):
        return requests.post(sign_url, headers=api.h, json={
            "region": "us-east-1", "method": method, "uri": uri, "headers": headers or {}, "body": body})

    def delete_body(*keys):
        return "<Delete>" + "".join(f"<Object><Key>{k}</Key></Object>" for k in keys) + "</Delete>"

    delete_uri = f"{s3.endpoint}/{s3.bucket}?delete"
    checked = delete_body(own_file)
    other = delete_body(own_file, victim_file)
    # SeaweedFS deletes whatever a body sent with a signature names, whatever hash was signed
    # (it does not verify x-amz-content-sha256): on such an endpoint batch deletes are not signed.
    for headers in ({"x-amz-content-sha256": ["UNSIGNED-PAYLOAD"]},
                    {"x-amz-content-sha256": [hashlib.sha256(checked.encode()).hexdigest()]},
                    {"x-amz-content-sha256": [hashlib.sha256(other.encode()).hexdigest()]}):
        r = sign("POST", delete_uri, checked, headers)
        assert r.status_code == 403, r.text
        assert "sign_batch_deletes" in r.json()["error"]["message"]
    assert victim_file in s3.keys(key_of(s3, victim) + "/")
    # One object at a time is signed, and only inside the table.
    r = sign("DELETE", f"{s3.endpoint}/{s3.bucket}/{own_file}")
    assert r.status_code == 200, r.text
    assert requests.delete(r.json()["uri"], headers={k: v[0] for k, v in r.json()["headers"].items()}).status_code == 204
    assert own_file not in s3.keys(mine_key + "/")
    assert sign("DELETE", f"{s3.endpoint}/{s3.bucket}/{victim_file}").status_code == 403

    # A raw path that only normalizes into the table, a second prefix, another port: refused.
    for uri in [f"{s3.endpoint}/{s3.bucket}/{key_of(s3, victim)}/../../{mine_key.removeprefix('signed/')}/a",
                f"{s3.endpoint}/{s3.bucket}?list-type=2&prefix={mine_key}/&prefix={key_of(s3, victim)}/",
                f"{s3.endpoint.rsplit(':', 1)[0]}:1/{s3.bucket}/{mine_key}/a"]:
        r = sign("GET", uri)
        assert r.status_code == 403, (uri, r.status_code, r.text)
    # A client `host` header is not what is signed: the URI's host and port are.
    own_left = s3.keys(mine_key + "/")[0]
    uri = f"{s3.endpoint}/{s3.bucket}/{urllib.parse.quote(own_left)}"
    r = sign("GET", uri, headers={"host": ["evil.example.com"]})
    assert r.status_code == 200, r.text
    headers = {k: v[0] for k, v in r.json()["headers"].items()}
    assert requests.get(r.json()["uri"], headers=headers).status_code == 200


def test_a_revoked_writer_gets_nothing_new(floe, s3):
    """How long a vended credential outlives a revoked grant: nothing new is handed out from the
    moment of the revoke, on any route, but keys already handed out cannot be called back and keep
    working until their session ends (docs/security.md)."""
    cat = floe.catalog("lake")
    cat.create_namespace(("revoke",))
    table = cat.create_table(("revoke", "t"), schema=DATA.schema)
    root = Api(floe, warehouse="lake")
    tenant = root.manage("GET", "/whoami")["tenant_id"]
    created = root.manage("POST", f"/tenants/{tenant}/principals", {"name": "revoked-writer"})
    role = root.manage("POST", f"/tenants/{tenant}/roles", {"name": "revoked-writers"})
    resource = {"kind": "table", "warehouse": root.prefix, "table": {"namespace": ["revoke"], "name": "t"}}
    grant = root.manage("POST", f"/tenants/{tenant}/grants",
                        {"role_id": role["id"], "resource": resource, "privilege": "TABLE_WRITE_DATA"})
    root.manage("PUT", f"/tenants/{tenant}/roles/{role['id']}/principals/{created['principal']['id']}")
    writer = Api(floe, created["client_id"], created["client_secret"], "lake")
    [cred] = writer.load("revoke", "t")["storage-credentials"]
    c = s3.client_with(cred["config"])
    key = key_of(s3, table.location())
    c.put_object(Bucket=s3.bucket, Key=f"{key}/data/before", Body=b"x")
    root.manage("DELETE", f"/tenants/{tenant}/grants/{grant['id']}")
    # Nothing new: load-table without credentials (or refused), /credentials refused.
    r = requests.get(writer.table_url("revoke", "t"), headers={**writer.h, **DELEGATION})
    assert r.status_code in (200, 403), r.text
    assert "session-token" not in r.text
    assert writer.credentials("revoke", "t").status_code == 403
    # What was handed out still writes: a session cannot be called back before it expires.
    c.put_object(Bucket=s3.bucket, Key=f"{key}/data/after", Body=b"x")
    assert f"{key}/data/after" in s3.keys(f"{key}/data/")


def test_a_failing_warehouse_does_not_hold_up_other_purges():
    """Escape 7: every purge of a warehouse whose storage failed ended the queue's run, so another
    tenant's purge-now waited behind all of them. A warehouse whose purge fails now waits for the
    next run alone; the others' purges go on at once."""
    dying = SeaweedS3()
    floe = FloeServer(f"""
purge_interval_ms = 200

[timeouts]
storage_ms = 2000

[[warehouses]]
name = "dying"
storage = {{ kind = "s3", bucket = "{dying.bucket}", key_prefix = "wh", region = "us-east-1", endpoint = "{dying.endpoint}", path_style = true }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
""")
    hang = None
    try:
        cat = floe.catalog("dying", **{"s3.access-key-id": ACCESS_KEY, "s3.secret-access-key": SECRET_KEY})
        cat.create_namespace(("doomed",))
        for i in range(12):
            cat.create_table(("doomed", f"t{i}"), schema=DATA.schema)
            cat.purge_table(("doomed", f"t{i}"))
        bin_url, h = floe.recycle_bin("dying")
        # Its storage stops answering: a listener that accepts and never replies.
        port = int(dying.endpoint.rsplit(":", 1)[1])
        dying.stop()
        import socket
        hang = socket.socket()
        hang.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hang.bind(("127.0.0.1", port))
        hang.listen(64)
        for d in floe.dropped("dying"):
            assert requests.delete(f"{bin_url}/{d['id']}", headers=h).status_code == 202
        # Another warehouse (created after the failing one, so its entries come later in any
        # order of warehouses) purges within a run or two.
        tenant = requests.get(f"{floe.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
        r = requests.post(f"{floe.uri}/management/v1/tenants/{tenant}/warehouses", headers=h,
                          json={"name": "later", "storage": {"kind": "local"}})
        assert r.status_code in (200, 201), r.text
        later = floe.catalog("later")
        later.create_namespace(("fine",))
        table = later.create_table(("fine", "t"), schema=DATA.schema)
        table.append(DATA)
        later.purge_table(("fine", "t"))
        later_bin, _ = floe.recycle_bin("later")
        [entry] = floe.dropped("later")
        started = time.time()
        assert requests.delete(f"{later_bin}/{entry['id']}", headers=h).status_code == 202
        while floe.dropped("later") and time.time() - started < 40:
            time.sleep(0.1)
        waited = time.time() - started
        assert floe.dropped("later") == [], "the other warehouse's purge never ran"
        assert waited < 8, f"the other warehouse's purge waited {waited:.1f} s behind the failing one"
        assert not Path(table.location().removeprefix("file://")).exists()
    finally:
        if hang:
            hang.close()
        floe.stop()


def test_create_and_register_answers_vend_only_the_new_tables_own_files(s3):
    """Create-table and register-table hand out credentials as load-table does (issue 25 changed
    how those answers are written): an insider who may create in its own namespace gets, from a
    create, a session for its new table's location and nothing of another table's; and registering
    another table's metadata file is refused without any credential in the answer."""
    server = FloeServer(config(s3).replace('key_prefix = "wh"', 'key_prefix = "wh-answers"'))
    try:
        victim = victim_table(server, "lake")
        victim_key = key_of(s3, victim)
        victim_file = [k for k in s3.keys(victim_key + "/") if "/data/" in k][0]
        root = Api(server, warehouse="lake")
        attacker = principal_with(server, "creator", [(NAMESPACE(root, "att"), "TABLE_CREATE"),
                                                      (NAMESPACE(root, "att"), "TABLE_WRITE_DATA")])
        base = f"{attacker.uri}/v1/{attacker.prefix}/namespaces/att"
        schema = {"type": "struct", "schema-id": 0,
                  "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}

        created = requests.post(f"{base}/tables", headers={**attacker.h, **DELEGATION},
                                json={"name": "mine", "schema": schema})
        assert created.status_code == 200, created.text
        mine = created.json()["metadata"]["location"]
        [cred] = created.json()["storage-credentials"]
        assert cred["prefix"] == mine + "/"
        c = s3.client_with(cred["config"])
        c.put_object(Bucket=s3.bucket, Key=key_of(s3, mine) + "/data/x", Body=b"x")
        denied(lambda: c.get_object(Bucket=s3.bucket, Key=victim_file))
        denied(lambda: c.put_object(Bucket=s3.bucket, Key=f"{victim_key}/data/evil", Body=b"x"))
        denied(lambda: c.list_objects_v2(Bucket=s3.bucket, Prefix=f"{victim_key}/"))
        denied(lambda: c.delete_object(Bucket=s3.bucket, Key=victim_file))

        victim_metadata = root.load("victim", "payroll", delegation=False)["metadata-location"]
        registered = requests.post(f"{base}/register", headers={**attacker.h, **DELEGATION},
                                   json={"name": "stolen", "metadata-location": victim_metadata})
        assert 400 <= registered.status_code < 500, registered.text
        assert "storage-credentials" not in registered.text
        assert "session-token" not in registered.text
        assert victim_file in s3.keys(victim_key + "/"), "the victim's data is untouched"
    finally:
        server.stop()
