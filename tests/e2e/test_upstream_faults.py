"""Faults upstream (issue 14, first part): deadlines on outbound calls, and errors that say
whether to retry.

- With the STS endpoint behind a TCP proxy that accepts connections and never answers, a
  delegated load-table answers 503 with Retry-After within the configured deadline plus a
  second, its single-flight waiters too; another warehouse's tables are served meanwhile; once the
  proxy forwards again the same server vends without a restart.
- A role STS refuses (AccessDenied) answers 500 `ServiceMisconfiguredException`, without
  Retry-After and without the upstream's answer.
- The readiness detail (`/management/v1/tenants/{tenant}/health`) says which warehouse's token
  service is unavailable or refuses the server, while `/health/ready` stays 200.
- With the S3 process frozen (SIGSTOP), a commit answers 503 within the storage deadline plus a
  second and does not land; a table on other storage is served meanwhile; after SIGCONT the same
  server commits.
- A commit that passes its own deadline before the pointer swap (S3 frozen for longer than the
  deadline, shorter than the storage timeout) answers 503 "did not land", and it did not.
"""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import FloeServer, stop_process
from proxy import TcpProxy
from seaweed import ACCESS_KEY, READ_ROLE, SECRET_KEY, WRITE_ROLE, SeaweedS3

DELEGATION = {"X-Iceberg-Access-Delegation": "vended-credentials"}
STS_DEADLINE_MS = 2000
# A role SeaweedFS's STS refuses to let Floe assume (AccessDenied, as AWS answers).
NO_SUCH_ROLE = "arn:aws:iam::000000000000:role/NoSuchRole"
# A debug build answering under load: the answer must come within the deadline plus this.
SLACK_SECS = 1.0


@pytest.fixture(scope="module")
def s3():
    server = SeaweedS3(sts=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(s3):
    host, port = s3.endpoint.removeprefix("http://").split(":")
    p = TcpProxy(int(port), host, mode=TcpProxy.HOLD)
    yield p
    p.stop()


def warehouse(name, s3, sts_endpoint, read_role=READ_ROLE, write_role=WRITE_ROLE):
    return f"""
[[warehouses]]
name = "{name}"
storage = {{ kind = "s3", bucket = "{s3.bucket}", key_prefix = "{name}", region = "us-east-1", endpoint = "{s3.endpoint}", path_style = true, sts_endpoint = "{sts_endpoint}", read_role_arn = "{read_role}", write_role_arn = "{write_role}" }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
"""


@pytest.fixture(scope="module")
def floe(s3, proxy):
    config = f"""
[timeouts]
token_service_ms = {STS_DEADLINE_MS}
""" + warehouse("stuck", s3, f"http://127.0.0.1:{proxy.port}") + warehouse("healthy", s3, s3.endpoint) \
        + warehouse("refused", s3, s3.endpoint, NO_SUCH_ROLE, NO_SUCH_ROLE)
    server = FloeServer(config)
    yield server
    server.stop()


def table_url(floe, h, warehouse, name):
    """Creates namespace `ns` and table `name` in `warehouse` (no delegation: no STS call)."""
    prefix = requests.get(f"{floe.uri}/v1/config", params={"warehouse": warehouse}, headers=h).json()["overrides"]["prefix"]
    base = f"{floe.uri}/v1/{prefix}/namespaces"
    requests.post(base, headers=h, json={"namespace": ["ns"]})
    schema = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
    r = requests.post(f"{base}/ns/tables", headers=h, json={"name": name, "schema": schema})
    assert r.status_code == 200, r.text
    return f"{base}/ns/tables/{name}"


def warehouse_health(floe, h):
    """The readiness detail of the root's tenant, by warehouse name."""
    tenant = requests.get(f"{floe.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
    r = requests.get(f"{floe.uri}/management/v1/tenants/{tenant}/health", headers=h)
    assert r.status_code == 200, r.text
    return {w["name"]: w for w in r.json()["warehouses"]}


def timed_load(url, h):
    started = time.monotonic()
    r = requests.get(url, headers={**h, **DELEGATION}, timeout=60)
    return r, time.monotonic() - started


def test_a_hung_sts_answers_503_within_its_deadline_and_hurts_no_other_warehouse(floe, proxy):
    h = floe.root_headers()
    stuck = table_url(floe, h, "stuck", "t")
    healthy = table_url(floe, h, "healthy", "t")
    bound = STS_DEADLINE_MS / 1000 + SLACK_SECS

    with ThreadPoolExecutor(4) as pool:
        # Three loads of the stuck table at once: one STS call, two single-flight waiters.
        waiting = [pool.submit(timed_load, stuck, h) for _ in range(3)]
        time.sleep(0.3)
        # Meanwhile another warehouse's table is vended at once.
        r, took = timed_load(healthy, h)
        assert r.status_code == 200, r.text
        assert r.json()["storage-credentials"], "the healthy warehouse vends"
        assert took < STS_DEADLINE_MS / 1000, f"the healthy warehouse waited {took:.2f} s"
        for f in waiting:
            r, took = f.result()
            assert r.status_code == 503, r.text
            assert took <= bound, f"answered after {took:.2f} s, the bound is {bound} s"
            assert r.headers.get("Retry-After") == "1", r.headers
            error = r.json()["error"]
            assert error["code"] == 503 and error["type"] == "ServiceUnavailableException"
            assert len(r.text) < 600, f"a short body, not an upstream dump: {r.text}"
            print(f"stuck load answered 503 after {took:.2f} s (deadline {STS_DEADLINE_MS} ms)")

    # Readiness is about the store, which is fine; the readiness detail names the trouble.
    assert requests.get(f"{floe.uri}/health/ready").status_code == 200
    health = warehouse_health(floe, h)
    assert health["stuck"]["token_service"]["state"] == "unavailable", health["stuck"]
    assert health["stuck"]["token_service"]["last_failure"] == "unavailable"
    assert health["stuck"]["storage"]["state"] == "reachable", health["stuck"]
    assert health["healthy"]["token_service"]["state"] == "reachable", health["healthy"]

    # The STS comes back: the same server vends without a restart.
    proxy.forward()
    r, took = timed_load(stuck, h)
    assert r.status_code == 200, r.text
    assert r.json()["storage-credentials"][0]["config"]["s3.session-token"]
    print(f"after recovery the stuck warehouse vended in {took:.2f} s")
    assert warehouse_health(floe, h)["stuck"]["token_service"]["state"] == "reachable"


def test_a_role_sts_refuses_is_a_misconfiguration_not_worth_retrying(floe):
    """AccessDenied is the warehouse's setup, not STS trouble: 500 with its own type and no
    Retry-After (Iceberg Java retries 503), a message for the operator, nothing upstream."""
    h = floe.root_headers()
    refused = table_url(floe, h, "refused", "t")
    r, took = timed_load(refused, h)
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert error["type"] == "ServiceMisconfiguredException", error
    assert "an operator must fix" in error["message"], error
    assert "Retry-After" not in r.headers
    assert NO_SUCH_ROLE not in r.text and "AccessDenied" not in r.text and len(r.text) < 600, r.text
    assert took < STS_DEADLINE_MS / 1000, "a refusal answers at once"
    refused_health = warehouse_health(floe, h)["refused"]
    assert refused_health["token_service"]["state"] == "refused", refused_health
    assert refused_health["token_service"]["failures"] >= 1


STORAGE_DEADLINE_MS = 2000


@pytest.fixture
def frozen_s3():
    """Its own SeaweedFS, so freezing it (SIGSTOP) stops no other test's storage."""
    server = SeaweedS3()
    yield server
    os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


def s3_lake(s3, key_prefix, settings, bucket=None, endpoint=None):
    """Floe with `settings` (top-level TOML) and one S3 warehouse `lake` reached with static keys
    (in `s3`'s bucket at its endpoint, unless others are given)."""
    return FloeServer(settings + f"""
[[warehouses]]
name = "lake"
storage = {{ kind = "s3", bucket = "{bucket or s3.bucket}", key_prefix = "{key_prefix}", region = "us-east-1", endpoint = "{endpoint or s3.endpoint}", path_style = true }}
s3_access_key_id = "{ACCESS_KEY}"
s3_secret_access_key = "{SECRET_KEY}"
""")


def test_a_commit_to_frozen_storage_fails_within_its_deadline_and_does_not_land(frozen_s3):
    s3 = frozen_s3
    floe = s3_lake(s3, "frozen", f"""
[timeouts]
storage_ms = {STORAGE_DEADLINE_MS}
""")
    try:
        h = floe.root_headers()
        table = table_url(floe, h, "lake", "t")
        local = table_url(floe, h, "demo", "t")
        before = requests.get(table, headers=h).json()["metadata-location"]
        commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"k": "v"}}]}
        bound = STORAGE_DEADLINE_MS / 1000 + SLACK_SECS

        os.kill(s3.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            r = requests.post(table, headers=h, json=commit, timeout=60)
            took = time.monotonic() - started
            assert r.status_code == 503, r.text
            assert took <= bound, f"the commit answered after {took:.2f} s, the bound is {bound} s"
            assert r.headers.get("Retry-After") == "1"
            print(f"commit to frozen S3 answered 503 after {took:.2f} s (deadline {STORAGE_DEADLINE_MS} ms)")
            # A table on other storage is served while this one's storage is frozen.
            started = time.monotonic()
            assert requests.get(local, headers=h, timeout=10).status_code == 200
            assert time.monotonic() - started < 1
        finally:
            os.kill(s3.proc.pid, signal.SIGCONT)

        # Nothing landed: the table still points at its old metadata, without the property.
        after = requests.get(table, headers=h).json()
        assert after["metadata-location"] == before
        assert "k" not in after["metadata"].get("properties", {})
        # The same server commits once the storage answers again.
        r = requests.post(table, headers=h, json=commit, timeout=60)
        assert r.status_code == 200, r.text
        assert requests.get(table, headers=h).json()["metadata"]["properties"]["k"] == "v"
    finally:
        floe.stop()


COMMIT_DEADLINE_MS = 1000


def test_a_commit_that_passes_its_deadline_before_the_swap_does_not_land(frozen_s3):
    """S3 freezes for 2.5 s, within the storage deadline but past the commit's own: the metadata
    write completes, the pointer does not move, and the answer says it did not land."""
    s3 = frozen_s3
    floe = s3_lake(s3, "late", f"""
commit_deadline_ms = {COMMIT_DEADLINE_MS}

[timeouts]
storage_ms = 10000
""")
    try:
        h = floe.root_headers()
        table = table_url(floe, h, "lake", "t")
        before = requests.get(table, headers=h).json()["metadata-location"]
        commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"late": "yes"}}]}
        os.kill(s3.proc.pid, signal.SIGSTOP)
        thaw = threading.Timer(2.5, lambda: os.kill(s3.proc.pid, signal.SIGCONT))
        thaw.start()
        started = time.monotonic()
        r = requests.post(table, headers=h, json=commit, timeout=60)
        took = time.monotonic() - started
        thaw.join()
        assert r.status_code == 503, r.text
        assert "did not land" in r.json()["error"]["message"], r.text
        assert r.headers.get("Retry-After") == "1"
        print(f"late commit answered 503 after {took:.2f} s (deadline {COMMIT_DEADLINE_MS} ms)")
        after = requests.get(table, headers=h).json()
        assert after["metadata-location"] == before, "the pointer did not move"
        assert "late" not in after["metadata"].get("properties", {})
        # In time, the same commit lands.
        r = requests.post(table, headers=h, json=commit, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        floe.stop()


REQUEST_DEADLINE_MS = 3000
MAX_IN_FLIGHT = 2


@pytest.fixture
def held_storage(s3):
    """Floe with one S3 warehouse `lake` reached through a proxy, a table `t` in it whose metadata
    is not cached (the server restarted after creating it), and the proxy holding: a load of `t`
    waits on storage that never answers, for longer than the request deadline."""
    host, port = s3.endpoint.removeprefix("http://").split(":")
    proxy = TcpProxy(int(port), host)
    floe = s3_lake(s3, "held", f"""
request_deadline_ms = {REQUEST_DEADLINE_MS}
max_in_flight = {MAX_IN_FLIGHT}

[timeouts]
storage_ms = 60000
""", endpoint=f"http://127.0.0.1:{proxy.port}")
    try:
        h = floe.root_headers()
        url = table_url(floe, h, "lake", "t")
        stop_process(floe.proc)
        floe.start()
        proxy.hold()
        yield floe, proxy, url
    finally:
        floe.stop()
        proxy.stop()


def test_a_read_past_its_deadline_answers_503_with_its_request_id(held_storage):
    floe, proxy, url = held_storage
    h = floe.root_headers()
    bound = REQUEST_DEADLINE_MS / 1000 + SLACK_SECS
    started = time.monotonic()
    r = requests.get(url, headers=h, timeout=60)
    took = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert took <= bound, f"answered after {took:.2f} s, the bound is {bound} s"
    assert took >= REQUEST_DEADLINE_MS / 1000 - 0.1, f"answered after {took:.2f} s, before the deadline"
    assert r.headers.get("Retry-After") == "1"
    error = r.json()["error"]
    assert error["type"] == "ServiceUnavailableException" and "deadline" in error["message"], error
    assert error["request-id"] and error["request-id"] == r.headers["X-Request-Id"], r.text
    assert len(r.text) < 400, r.text
    print(f"a read on held storage answered 503 after {took:.2f} s (deadline {REQUEST_DEADLINE_MS} ms)")
    # The log names the request by the same id.
    assert error["request-id"] in floe.log_path.read_text()
    # The client's own id is the one answered.
    r = requests.get(url, headers={**h, "X-Request-Id": "client-chose-this"}, timeout=60)
    assert r.status_code == 503 and r.json()["error"]["request-id"] == "client-chose-this"
    # Storage answers again: the same server loads the table.
    proxy.forward()
    r = requests.get(url, headers=h, timeout=60)
    assert r.status_code == 200, r.text
    assert "X-Request-Id" not in r.headers or r.headers["X-Request-Id"]


def test_past_capacity_a_request_answers_503_at_once(held_storage):
    """Two loads wait on held storage: the server is at its capacity of two, so a third request
    answers 503 with Retry-After at once instead of queueing; /health/live still answers; once
    the two are done, requests are served again."""
    floe, proxy, url = held_storage
    h = floe.root_headers()
    with ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(requests.get, url, headers=h, timeout=60) for _ in range(MAX_IN_FLIGHT)]
        deadline = time.monotonic() + 2
        while proxy.held_open() < MAX_IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.02)
        started = time.monotonic()
        r = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "lake"}, headers=h, timeout=10)
        took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert "capacity" in r.json()["error"]["message"] and r.headers.get("Retry-After") == "1"
        assert took < 0.5, f"shed after {took:.3f} s"
        print(f"past capacity, a request was shed in {took * 1000:.1f} ms")
        assert requests.get(f"{floe.uri}/health/live", timeout=5).status_code == 200
        assert [f.result().status_code for f in waiting] == [503] * MAX_IN_FLIGHT  # their deadline
    r = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "lake"}, headers=h, timeout=10)
    assert r.status_code == 200, r.text


def test_a_request_whose_client_went_away_stops_its_work(held_storage):
    """The client hangs up while Floe waits on held storage: Floe drops its storage call (the
    proxy sees Floe close the connection) long before the request deadline would have."""
    import socket as sockets
    floe, proxy, url = held_storage
    h = floe.root_headers()
    path = url.removeprefix(floe.uri)
    client = sockets.create_connection(("127.0.0.1", floe.port))
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {h['Authorization']}\r\n\r\n".encode())
    deadline = time.monotonic() + 2
    while proxy.held_open() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.held_open() > 0, "the load is waiting on storage"
    client.close()
    gone = time.monotonic()
    while proxy.held_open() > 0 and time.monotonic() - gone < REQUEST_DEADLINE_MS / 1000:
        time.sleep(0.02)
    stopped = time.monotonic() - gone
    assert proxy.held_open() == 0, "Floe still waits on storage for a client that is gone"
    assert stopped < 1.0, f"Floe stopped its storage call {stopped:.2f} s after the client went away"
    print(f"Floe dropped the storage call {stopped:.3f} s after its client went away")


def commit_in_thread(table, h, commit):
    """Sends `commit` on a thread; returns a future of (response or exception, seconds)."""
    def send():
        started = time.monotonic()
        try:
            return requests.post(table, headers=h, json=commit, timeout=60), time.monotonic() - started
        except requests.RequestException as e:
            return e, time.monotonic() - started
    return ThreadPoolExecutor(1).submit(send)


def test_sigterm_lets_an_in_flight_commit_finish_then_stops(frozen_s3):
    """SIGTERM while a commit waits on storage (frozen for 1.5 s): no new connection is served, the
    commit lands and is answered 200, and the process exits cleanly, its log saying so last."""
    s3 = frozen_s3
    floe = s3_lake(s3, "stop-finish", "shutdown_grace_secs = 5\n")
    h = floe.root_headers()
    table = table_url(floe, h, "lake", "t")
    commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"finished": "yes"}}]}
    os.kill(s3.proc.pid, signal.SIGSTOP)
    thaw = threading.Timer(1.5, lambda: os.kill(s3.proc.pid, signal.SIGCONT))
    thaw.start()
    answer = commit_in_thread(table, h, commit)
    time.sleep(0.3)
    stopped_at = time.monotonic()
    floe.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(requests.RequestException):
        requests.get(f"{floe.uri}/health/live", timeout=1)  # not accepted any more
    r, took = answer.result()
    assert not isinstance(r, Exception), r
    assert r.status_code == 200, r.text
    assert floe.proc.wait(timeout=10) == 0
    exited = time.monotonic() - stopped_at
    print(f"in-flight commit answered 200 after {took:.2f} s; the process exited {exited:.2f} s after SIGTERM")
    log = floe.log_path.read_text().splitlines()
    last = max(i for i, line in enumerate(log) if "Floe stopped" in line)
    # actix's workers may still report closing idle keep-alive connections on their own threads;
    # nothing of Floe's (a request, a commit, the store) is logged after it said it stopped.
    after = [line for line in log[last + 1 :] if "actix_server" not in line]
    assert after == [], after
    thaw.join()
    floe.start()
    try:
        loaded = requests.get(table, headers=floe.root_headers()).json()
        assert loaded["metadata"]["properties"]["finished"] == "yes", "the answered commit landed"
    finally:
        floe.stop()


def test_a_commit_not_done_by_the_end_of_the_grace_does_not_land(frozen_s3):
    """Grace 2 s: commits stop landing 1 s after SIGTERM. Storage frozen until 1.5 s after it: the
    metadata write completes, the pointer does not move, the answer says it did not land, and the
    process exits within the grace."""
    s3 = frozen_s3
    floe = s3_lake(s3, "stop-late", "shutdown_grace_secs = 2\n\n[timeouts]\nstorage_ms = 60000\n")
    h = floe.root_headers()
    table = table_url(floe, h, "lake", "t")
    before = requests.get(table, headers=h).json()["metadata-location"]
    commit = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"late": "yes"}}]}
    os.kill(s3.proc.pid, signal.SIGSTOP)
    answer = commit_in_thread(table, h, commit)
    time.sleep(0.3)
    stopped_at = time.monotonic()
    floe.proc.send_signal(signal.SIGTERM)
    thaw = threading.Timer(1.5, lambda: os.kill(s3.proc.pid, signal.SIGCONT))
    thaw.start()
    r, took = answer.result()
    assert not isinstance(r, Exception), r
    assert r.status_code == 503, r.text
    assert "did not land" in r.json()["error"]["message"], r.text
    assert floe.proc.wait(timeout=10) == 0
    exited = time.monotonic() - stopped_at
    assert exited <= 2 + SLACK_SECS, f"exited {exited:.2f} s after SIGTERM; the grace is 2 s"
    print(f"a commit past the shutdown's last moment answered 503 after {took:.2f} s; exit after {exited:.2f} s")
    thaw.join()
    floe.start()
    try:
        after = requests.get(table, headers=floe.root_headers()).json()
        assert after["metadata-location"] == before, "the pointer did not move"
        assert "late" not in after["metadata"].get("properties", {})
    finally:
        floe.stop()


def test_a_bucket_that_does_not_exist_is_a_misconfiguration(s3):
    """Storage answering NoSuchBucket is the warehouse's setup: 500 ServiceMisconfigured, no
    Retry-After, a message for the operator, and nothing of S3's answer. (SeaweedFS makes a bucket
    on the first write into it, so the missing bucket is read: registering a table in it.)"""
    bucket = f"missing-{os.getpid()}"
    floe = s3_lake(s3, "x", "", bucket=bucket)
    try:
        h = floe.root_headers()
        prefix = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "lake"}, headers=h).json()["overrides"]["prefix"]
        base = f"{floe.uri}/v1/{prefix}/namespaces"
        assert requests.post(base, headers=h, json={"namespace": ["ns"]}).status_code == 200
        started = time.monotonic()
        r = requests.post(f"{base}/ns/register", headers=h, timeout=30, json={
            "name": "t", "metadata-location": f"s3://{bucket}/x/t/metadata/00000-a.metadata.json"})
        took = time.monotonic() - started
        assert r.status_code == 500, r.text
        error = r.json()["error"]
        assert error["type"] == "ServiceMisconfiguredException" and "an operator must fix" in error["message"]
        assert "Retry-After" not in r.headers and "NoSuchBucket" not in r.text and s3.endpoint not in r.text
        assert took < 5, f"answered after {took:.2f} s"
    finally:
        floe.stop()
