"""Two Floe processes on one PostgreSQL database: commits through both lose nothing, a grant
revoked on one stops working on the other within the documented bound, and /metrics shows the
operations series."""

import base64
import json
import os
import re
import tempfile
import threading
import time

import pyarrow as pa
import pytest
import requests
from pyiceberg.exceptions import CommitFailedException

from conftest import FloeServer
from postgres import Database
from proxy import TcpProxy

WRITERS = 8
APPENDS_PER_WRITER = 5
# Documented bound for a change on one replica to reach another's caches (docs/operations.md, "sled or PostgreSQL"):
# notifications arrive within milliseconds; 5 s is the cache lifetime if they are lost.
PROPAGATION_BOUND_SECS = 5


@pytest.fixture(scope="module")
def replicas():
    db = Database()
    shared = tempfile.TemporaryDirectory(prefix="floe-shared-")
    config = f"""
purge_interval_ms = 200

[[warehouses]]
name = "lake"
storage = {{ kind = "local", root = "file://{shared.name}" }}
"""
    env = {"FLOE_STORE": "postgres", "FLOE_POSTGRES__URL": db.url, "FLOE_LOG_FORMAT": "json",
           "FLOE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    a = FloeServer(config, env)
    b = FloeServer(config, env)
    yield a, b
    a.stop()
    b.stop()
    shared.cleanup()
    db.drop()


def token(server, client_id, secret):
    r = requests.post(f"{server.uri}/v1/oauth/tokens", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_both_replicas_serve_one_catalog(replicas):
    a, b = replicas
    a.catalog("lake").create_namespace(("shared",))
    assert ("shared",) in b.catalog("lake").list_namespaces()
    for server in replicas:
        assert requests.get(f"{server.uri}/health/ready").status_code == 200


def test_eight_writers_across_two_replicas_lose_no_append(replicas):
    a, b = replicas
    cat = a.catalog("lake")
    cat.create_namespace(("w",))
    schema = pa.schema([("writer", pa.int64()), ("n", pa.int64())])
    cat.create_table(("w", "t"), schema=schema)
    acknowledged, conflicts, errors = [], [0], []
    lock = threading.Lock()

    def writer(i):
        try:
            table = (a if i % 2 == 0 else b).catalog("lake").load_table(("w", "t"))
            for n in range(APPENDS_PER_WRITER):
                rows = pa.table({"writer": [i], "n": [n]}, schema=schema)
                while True:
                    try:
                        table.append(rows)
                        break
                    except CommitFailedException:
                        with lock:
                            conflicts[0] += 1
                        table = table.refresh()
                with lock:
                    acknowledged.append((table.current_snapshot().snapshot_id, (i, n)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(acknowledged) == WRITERS * APPENDS_PER_WRITER

    final = b.catalog("lake").load_table(("w", "t"))
    history = {entry.snapshot_id for entry in final.history()}
    missing = [ack for ack in acknowledged if ack[0] not in history]
    assert not missing, f"acknowledged appends missing from the snapshot history: {missing}"
    rows = final.scan().to_arrow()
    got = sorted(zip(rows["writer"].to_pylist(), rows["n"].to_pylist()))
    assert got == sorted(row for _, row in acknowledged)
    print(f"{len(acknowledged)} appends through 2 replicas, {conflicts[0]} client retries after 409")


def test_a_grant_revoked_on_one_replica_stops_working_on_the_other(replicas):
    a, b = replicas
    cat = a.catalog("lake")
    cat.create_namespace(("g",))
    cat.create_table(("g", "t"), schema=pa.schema([("id", pa.int64())]))
    root = token(a, "e2e-root", "e2e-root-secret-0123")
    manage = f"{a.uri}/management/v1"
    tenant = requests.get(f"{manage}/whoami", headers=root).json()["tenant_id"]
    prefix = requests.get(f"{a.uri}/v1/config", params={"warehouse": "lake"}, headers=root).json()["overrides"]["prefix"]
    created = requests.post(f"{manage}/tenants/{tenant}/principals", headers=root, json={"name": "viewer"}).json()
    role = requests.post(f"{manage}/tenants/{tenant}/roles", headers=root, json={"name": "viewers"}).json()
    resource = {"kind": "namespace", "warehouse": prefix, "namespace": ["g"]}
    grant = requests.post(f"{manage}/tenants/{tenant}/grants", headers=root,
                          json={"role_id": role["id"], "resource": resource, "privilege": "TABLE_READ_METADATA"})
    assert grant.status_code == 201, grant.text
    r = requests.put(f"{manage}/tenants/{tenant}/roles/{role['id']}/principals/{created['principal']['id']}",
                     headers=root)
    assert r.status_code < 300, r.text

    viewer_on_b = token(b, created["client_id"], created["client_secret"])
    table_on_b = f"{b.uri}/v1/{prefix}/namespaces/g/tables/t"
    # Replica B learns the new grant and caches the viewer's grants.
    deadline = time.time() + PROPAGATION_BOUND_SECS
    while requests.get(table_on_b, headers=viewer_on_b).status_code != 200:
        assert time.time() < deadline, "the grant did not reach replica B in time"
        time.sleep(0.05)
    assert requests.get(table_on_b, headers=viewer_on_b).status_code == 200

    revoked = requests.delete(f"{manage}/tenants/{tenant}/grants/{grant.json()['id']}", headers=root)
    assert revoked.status_code == 204
    started = time.time()
    while (status := requests.get(table_on_b, headers=viewer_on_b).status_code) == 200:
        assert time.time() - started < PROPAGATION_BOUND_SECS, "revocation did not reach replica B"
        time.sleep(0.02)
    took = time.time() - started
    assert status == 403
    # Well inside the cache lifetime: the notification did it, not the cache expiring.
    assert took < 2, f"revocation took {took:.2f} s"
    print(f"revocation reached replica B after {took * 1000:.0f} ms")


def metric(text, name, **labels):
    """The value of one series in Prometheus text, or None."""
    for line in text.splitlines():
        m = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            return float(m.group(2))
    return None


def test_metrics_expose_the_operations_series(replicas):
    a, _ = replicas
    cat = a.catalog("lake")
    cat.create_namespace(("m",))
    table = cat.create_table(("m", "t"), schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([1], pa.int64())}))
    for _ in range(3):
        cat.load_table(("m", "t"))
    text = requests.get(f"{a.uri}/metrics").text
    route = "/v1/{prefix}/namespaces/{namespace}/tables/{table}"
    # The histogram's _count is the request count by method, route and status.
    assert metric(text, "floe_http_request_seconds_count", method="GET", route=route, status="200") >= 3
    assert metric(text, "floe_http_request_seconds_bucket", method="GET", route=route, le="+Inf") >= 3
    assert metric(text, "floe_http_request_seconds_count", method="POST", route=route, status="200") >= 1
    assert metric(text, "floe_store_seconds_count", op="get_tabular") >= 1
    assert metric(text, "floe_store_seconds_count", op="swap_metadata") >= 1
    for name in ["floe_metadata_cache_hits_total", "floe_token_cache_hits_total", "floe_grant_cache_hits_total",
                 "floe_change_notifications_total", "floe_commit_batches_total", "floe_pointer_cache_hits_total",
                 "floe_pointer_notices_total"]:
        assert metric(text, name) >= 1, name
    for name in ["floe_metadata_cache_misses_total", "floe_token_cache_misses_total",
                 "floe_grant_cache_misses_total", "floe_vended_cache_hits_total",
                 "floe_vended_cache_misses_total", "floe_commit_conflicts_total", "floe_commit_retries_total",
                 "floe_sts_calls_total", "floe_sts_failures_total", "floe_sas_tokens_total",
                 "floe_sas_failures_total", "floe_gcs_token_exchanges_total",
                 "floe_gcs_token_exchange_failures_total", "floe_store_errors_total"]:
        assert metric(text, name) is not None, f"{name} is not exposed"
    # Raw paths never become labels.
    assert "/namespaces/m/" not in text


def test_a_commit_on_one_replica_is_served_by_the_other_within_milliseconds(replicas):
    """Replica B serves table pointers from memory (its hit counter grows), and each PyIceberg
    append acknowledged by replica A is what B's next loads return within the notice's delay,
    far inside the 5 s staleness bound; every acknowledged append is in the table B serves."""
    a, b = replicas
    cat = a.catalog("lake")
    cat.create_namespace(("p",))
    schema = pa.schema([("n", pa.int64())])
    table = cat.create_table(("p", "t"), schema=schema)
    root = token(b, "e2e-root", "e2e-root-secret-0123")
    prefix = requests.get(f"{b.uri}/v1/config", params={"warehouse": "lake"}, headers=root).json()["overrides"]["prefix"]
    on_b = f"{b.uri}/v1/{prefix}/namespaces/p/tables/t"
    hits = lambda: metric(requests.get(f"{b.uri}/metrics").text, "floe_pointer_cache_hits_total") or 0
    before = hits()
    for _ in range(20):
        assert requests.get(on_b, headers=root).status_code == 200
    assert hits() - before >= 19, "replica B reads the pointer from memory once it has it"
    delays, session = [], requests.Session()
    for n in range(30):
        table.append(pa.table({"n": [n]}, schema=schema))
        want = table.metadata_location
        started = time.monotonic()
        while (got := session.get(on_b, headers=root).json()["metadata-location"]) != want:
            assert time.monotonic() - started < 1, f"replica B still serves {got} 1 s after A acknowledged {want}"
            time.sleep(0.001)
        delays.append(time.monotonic() - started)
    delays.sort()
    print(f"an append acknowledged by A was served by B after p50 {delays[15] * 1000:.1f} ms, "
          f"max {delays[-1] * 1000:.1f} ms")
    rows = b.catalog("lake").load_table(("p", "t")).scan().to_arrow()
    assert sorted(rows["n"].to_pylist()) == list(range(30))


def test_logs_are_json_lines_carrying_the_request_id(replicas):
    a, _ = replicas
    r = requests.get(f"{a.uri}/v1/config", params={"warehouse": "lake"},
                     headers={**token(a, "e2e-root", "e2e-root-secret-0123"), "X-Request-Id": "e2e-req-42"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "e2e-req-42"
    generated = requests.get(f"{a.uri}/health/live").headers["x-request-id"]
    assert generated
    time.sleep(0.2)
    lines = [json.loads(line) for line in a.log_path.read_text().splitlines() if line.startswith("{")]
    ours = [e for e in lines if e.get("fields", {}).get("message") == "http request"
            and e.get("span", {}).get("request_id") == "e2e-req-42"]
    assert ours, lines[-5:]
    assert ours[0]["fields"]["status"] == 200 and ours[0]["fields"]["path"] == "/v1/config"
    assert any(e.get("span", {}).get("request_id") == generated for e in lines)
    # Secrets never reach the log.
    assert "e2e-root-secret-0123" not in a.log_path.read_text()


def test_readiness_follows_the_database(replicas):
    from urllib.parse import urlparse
    db_url = urlparse(replicas[0].env["FLOE_POSTGRES__URL"])
    proxy = TcpProxy(db_url.port or 5432)
    url = db_url._replace(netloc=f"{db_url.username}@127.0.0.1:{proxy.port}").geturl()
    server = FloeServer(replicas[0].config.read_text(), {**replicas[0].env, "FLOE_POSTGRES__URL": url})
    try:
        ready = lambda: requests.get(f"{server.uri}/health/ready", timeout=10).status_code
        assert ready() == 200
        proxy.cut()
        started = time.time()
        assert ready() == 503
        assert time.time() - started < 5, "readiness answers within its 2 s store timeout"
        assert requests.get(f"{server.uri}/health/live").status_code == 200
        proxy.forward()
        deadline = time.time() + 15
        while ready() != 200:
            assert time.time() < deadline, "readiness did not recover with the database"
            time.sleep(0.2)
    finally:
        server.stop()
