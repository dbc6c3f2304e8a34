"""Server-side scan planning with PyIceberg 0.12 (`scan-planning-mode=server`) on a local
warehouse: every scan reads exactly the rows PyIceberg's own planning reads, the plan really comes
from Floe (its route is counted), pruning keeps fewer files for selective filters, and planning
refuses what it must."""

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from pyiceberg.expressions import And, EqualTo, GreaterThan, In, IsNull, LessThan, Not, Or
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import DoubleType, LongType, NestedField, StringType, TimestampType

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "city", StringType(), required=False),
    NestedField(3, "ts", TimestampType(), required=False),
    NestedField(4, "amount", DoubleType(), required=False),
)
SPEC = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="city"),
    PartitionField(source_id=3, field_id=1001, transform=DayTransform(), name="ts_day"),
)
DAY0 = datetime(2026, 1, 1)
PLAN_ROUTE = "/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan"


def batch(first, n, city, day, amount=1.0):
    ids = list(range(first, first + n))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "city": pa.array([city] * n, pa.string()),
        "ts": pa.array([DAY0 + timedelta(days=day, minutes=i) for i in range(n)], pa.timestamp("us")),
        "amount": pa.array([amount + i for i in range(n)], pa.float64()),
    })


def plans_counted(floe):
    text = requests.get(f"{floe.uri}/metrics").text
    total = 0
    for line in text.splitlines():
        if line.startswith("floe_http_request_seconds_count") and f'route="{PLAN_ROUTE}"' in line \
                and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def reader_of_events(floe, h, wh, name, privilege):
    """A principal whose one role holds `privilege` on plan.events; its `Authorization` header."""
    tenant = requests.get(f"{floe.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
    base = f"{floe.uri}/management/v1/tenants/{tenant}"

    def manage(method, path, body=None):
        r = requests.request(method, f"{base}{path}", headers=h, json=body)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    created = manage("POST", "/principals", {"name": name})
    role = manage("POST", "/roles", {"name": f"{name}-role"})
    manage("POST", "/grants", {"role_id": role["id"], "privilege": privilege, "resource": {
        "kind": "table", "warehouse": wh, "table": {"namespace": ["plan"], "name": "events"}}})
    manage("PUT", f"/roles/{role['id']}/principals/{created['principal']['id']}")
    token = requests.post(f"{floe.uri}/v1/oauth/tokens", data={
        "grant_type": "client_credentials", "client_id": created["client_id"],
        "client_secret": created["client_secret"]}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def read(table, **scan):
    result = table.scan(**scan).to_arrow()
    cols = sorted(result.column_names)
    return sorted(tuple(r[c] for c in cols) for r in result.to_pylist()), cols


def with_events(client):
    """The events table: partitioned by city and day, four appends (80 rows, five files)."""
    client.create_namespace(("plan",))
    table = client.create_table(("plan", "events"), schema=SCHEMA, partition_spec=SPEC)
    table.append(batch(0, 20, "oslo", 0))
    table.append(batch(100, 20, "rome", 0, amount=50.0))
    table.append(batch(200, 20, "oslo", 1, amount=100.0))
    table.append(pa.concat_tables([batch(300, 10, "lima", 2), batch(400, 10, "rome", 2, amount=500.0)]))


@pytest.fixture
def tables(floe):
    client = floe.catalog()
    server = floe.catalog(**{"scan-planning-mode": "server"})
    with_events(client)
    return client, server


def assert_same(floe, client, server, **scan):
    before = plans_counted(floe)
    mine, theirs = read(server.load_table(("plan", "events")), **scan), read(client.load_table(("plan", "events")), **scan)
    assert plans_counted(floe) == before + 1, "the scan was planned by Floe"
    assert mine == theirs, scan
    return len(mine[0])


def test_server_planning_reads_the_rows_client_planning_reads(floe, tables):
    client, server = tables
    assert server.supports_server_side_planning()
    scans = [
        {},
        {"row_filter": EqualTo("city", "oslo")},
        {"row_filter": In("city", {"rome", "lima"})},
        {"row_filter": GreaterThan("id", 205)},
        {"row_filter": LessThan("amount", 60.0)},
        {"row_filter": And(EqualTo("city", "rome"), GreaterThan("ts", (DAY0 + timedelta(days=1)).isoformat()))},
        {"row_filter": Or(EqualTo("city", "lima"), Not(GreaterThan("id", 5)))},
        {"row_filter": IsNull("city")},
        {"row_filter": "city = 'oslo' and amount >= 105.0"},
        {"selected_fields": ("id", "amount"), "row_filter": EqualTo("city", "oslo")},
    ]
    counts = [assert_same(floe, client, server, **scan) for scan in scans]
    assert counts[0] == 80 and counts[1] == 40 and counts[7] == 0


def test_pruning_keeps_only_the_files_a_filter_may_read(floe, tables):
    _, server = tables
    table = server.load_table(("plan", "events"))
    everything = list(table.scan().plan_files())
    assert len(everything) == 5
    by_partition = list(table.scan(row_filter=EqualTo("city", "lima")).plan_files())
    assert [t.file.partition[0] for t in by_partition] == ["lima"]
    by_metrics = list(table.scan(row_filter=GreaterThan("id", 450)).plan_files())
    assert by_metrics == [], "no file holds an id above 409"
    by_day = list(table.scan(row_filter=LessThan("ts", (DAY0 + timedelta(hours=12)).isoformat())).plan_files())
    assert len(by_day) == 2, "day 0 holds oslo's and rome's first appends"


def test_a_transform_term_prunes_by_the_partition_field_with_that_transform(floe, tables):
    """Iceberg Java sends transform terms (`day(ts) = ...`); PyIceberg cannot. On a table
    partitioned by `day(ts)` they prune as exactly as a predicate on the partition field, and are
    decided in residuals; a transform no partition field has prunes nothing and stays."""
    from datetime import date
    h = floe.root_headers()
    wh = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
    url = f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events/plan"
    day = {"type": "transform", "transform": "day", "term": "ts"}

    def planned(filter):
        r = requests.post(url, headers=h, json={"filter": filter})
        assert r.status_code == 200, r.text
        tasks = r.json()["file-scan-tasks"]
        return sum(t["data-file"]["record-count"] for t in tasks), tasks

    rows, tasks = planned({"type": "eq", "term": day, "value": "2026-01-02"})
    assert rows == 20 and [t["data-file"]["partition"][0] for t in tasks] == ["oslo"]
    assert all(t["residual-filter"] is True for t in tasks)
    # The literal as days since the epoch, as an unbound Java expression may send it.
    assert planned({"type": "eq", "term": day, "value": (date(2026, 1, 2) - date(1970, 1, 1)).days})[0] == 20
    assert planned({"type": "gt-eq", "term": day, "value": "2026-01-02"})[0] == 40
    assert planned({"type": "lt", "term": day, "value": "2026-01-01"}) == (0, [])
    assert planned({"type": "in", "term": day, "values": ["2026-01-01", "2026-01-03"]})[0] == 60
    # With a column predicate, under `or` and `not`.
    rows, tasks = planned({"type": "and", "left": {"type": "eq", "term": day, "value": "2026-01-03"},
                           "right": {"type": "eq", "term": "city", "value": "rome"}})
    assert rows == 10 and all(t["residual-filter"] is True for t in tasks)
    assert planned({"type": "or", "left": {"type": "eq", "term": day, "value": "2026-01-02"},
                    "right": {"type": "eq", "term": "city", "value": "lima"}})[0] == 30
    assert planned({"type": "not", "child": {"type": "eq", "term": day, "value": "2026-01-01"}})[0] == 40
    # No partition field is bucket[4](id): nothing pruned, the predicate stays in every residual.
    bucket = {"type": "eq", "term": {"type": "transform", "transform": "bucket[4]", "term": "id"}, "value": 1}
    rows, tasks = planned(bucket)
    assert rows == 80 and all(t["residual-filter"] == bucket for t in tasks)


def test_a_plan_asked_again_is_answered_from_its_rendered_answer(floe, tables):
    """A repeated plan is answered from the answer kept for it, with a plan id of its own; a
    new snapshot, a schema change or another filter is another answer."""
    client, _ = tables
    h = floe.root_headers()
    wh = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
    url = f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events/plan"

    def reused():
        text = requests.get(f"{floe.uri}/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("floe_plan_answers_reused"))

    def rows(body):
        r = requests.post(url, headers=h, json=body)
        assert r.status_code == 200, r.text
        return r.json(), sum(t["data-file"]["record-count"] for t in r.json()["file-scan-tasks"])

    rome = {"filter": {"type": "eq", "term": "city", "value": "rome"}}
    (first, n), before = rows(rome), reused()
    again, m = rows(rome)
    assert reused() == before + 1 and (n, m) == (30, 30)
    assert again["file-scan-tasks"] == first["file-scan-tasks"] and again["plan-id"] != first["plan-id"]
    assert rows({"filter": {"type": "eq", "term": "city", "value": "lima"}})[1] == 10
    assert rows({**rome, "case-sensitive": False})[1] == 30
    assert reused() == before + 1, "another request is another answer"
    table = client.load_table(("plan", "events"))
    table.append(batch(900, 5, "rome", 5))
    assert rows(rome)[1] == 35 and reused() == before + 1, "a new snapshot is another answer"
    with table.update_schema() as update:
        update.add_column("note", StringType())
    assert rows(rome)[1] == 35 and reused() == before + 1, "a new schema is another answer"
    assert rows(rome)[1] == 35 and reused() == before + 2

    # A snapshot planned (and its answer kept) then expired is no longer planned: 404, as for
    # any snapshot the table does not have, and the plan id naming it is refused too.
    table = client.load_table(("plan", "events"))
    old = min(table.snapshots(), key=lambda s: s.sequence_number).snapshot_id
    at_old = {**rome, "snapshot-id": old}
    kept, n = rows(at_old)
    assert n == 0 and rows(at_old)[1] == 0 and reused() == before + 3
    table.maintenance.expire_snapshots().by_id(old).commit()
    r = requests.post(url, headers=h, json=at_old)
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundException", r.text
    r = requests.get(f"{url}/{kept['plan-id']}", headers=h)
    assert r.status_code == 404, r.text
    assert reused() == before + 3
    # Too large a filter (its plan id and plan tasks carry it) is refused.
    huge = {"filter": {"type": "in", "term": "city", "values": [f"c{i:06}" for i in range(10_000)]}}
    r = requests.post(url, headers=h, json=huge)
    assert r.status_code == 400 and "filter is larger" in r.json()["error"]["message"], r.text


def test_time_travel_schema_and_partition_evolution_and_deletes(floe, tables):
    client, server = tables
    table = client.load_table(("plan", "events"))
    first = table.history()[0].snapshot_id
    assert assert_same(floe, client, server, snapshot_id=first) == 20
    # Rows deleted by PyIceberg (it rewrites the files that hold them).
    table.delete(delete_filter=In("id", {3, 105, 305}))
    assert assert_same(floe, client, server) == 77
    assert assert_same(floe, client, server, row_filter=EqualTo("city", "lima")) == 9
    with table.update_schema() as update:
        update.add_column("note", StringType())
    table = client.load_table(("plan", "events"))
    table.append(batch(600, 5, "oslo", 3).append_column("note", pa.array(["x"] * 5, pa.string())))
    # A new partition field; PyIceberg 0.12 cannot read a null partition value in a plan, so no
    # file of the new spec has one here (docs/planning.md).
    with table.update_spec() as update:
        update.add_identity("note")
    table = client.load_table(("plan", "events"))
    table.append(batch(700, 5, "kyiv", 4).append_column("note", pa.array(["y"] * 5, pa.string())))
    assert assert_same(floe, client, server) == 87
    assert assert_same(floe, client, server, row_filter=EqualTo("note", "y")) == 5
    assert assert_same(floe, client, server, row_filter=IsNull("note")) == 77
    assert assert_same(floe, client, server, row_filter=And(EqualTo("city", "oslo"), GreaterThan("id", 600))) == 4
    assert assert_same(floe, client, server, snapshot_id=first, row_filter=EqualTo("city", "oslo")) == 20


def test_planning_answers_errors_in_the_spec_shape(floe, tables):
    h = floe.root_headers()
    wh = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
    url = f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events/plan"
    current = requests.get(f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events", headers=h).json()["metadata"]["current-snapshot-id"]

    def error(body, status, kind):
        r = requests.post(url, headers=h, json=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["type"] == kind, r.text
        return r.json()["error"]["message"]

    error({"snapshot-id": current, "start-snapshot-id": current, "end-snapshot-id": current}, 400, "BadRequestException")
    error({"start-snapshot-id": current}, 400, "BadRequestException")
    error({"snapshot-id": 12345}, 404, "NotFoundException")
    error({"filter": {"type": "eq", "term": "nope", "value": 1}}, 400, "BadRequestException")
    error({"filter": {"type": "between", "term": "id"}}, 400, "BadRequestException")
    error({"select": ["id", "nope"]}, 400, "BadRequestException")
    r = requests.post(f"{floe.uri}/v1/{wh}/namespaces/plan/tables/none/plan", headers=h, json={})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NoSuchTableException"

    # Both filter forms and stats-fields: Iceberg Java's form with a transform term, and the newer one.
    r = requests.post(url, headers=h, json={
        "filter": {"type": "eq", "term": {"type": "transform", "transform": "day", "term": "ts"}, "value": "2026-01-03"},
        "stats-fields": ["id"]})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["status"] == "completed"
    assert len(plan["file-scan-tasks"]) == 2, "day 2 holds lima's and rome's last append"
    task = plan["file-scan-tasks"][0]
    assert task["residual-filter"] is True, "the partition field day(ts) decides it"
    data = task["data-file"]
    assert data["content"] == "data" and data["file-format"] == "parquet"
    assert isinstance(data["partition"], list) and len(data["partition"]) == 2
    assert data["lower-bounds"]["keys"] == [1] and data["column-sizes"]["keys"] == [1]
    r = requests.post(url, headers=h, json={
        "filter": {"type": "eq", "left": {"type": "reference", "name": "city"},
                   "right": {"type": "literal", "value": "lima"}}})
    assert r.status_code == 200, r.text
    assert [t["data-file"]["partition"][0] for t in r.json()["file-scan-tasks"]] == ["lima"]
    assert all(t["residual-filter"] is True for t in r.json()["file-scan-tasks"]), \
        "city = 'lima' is decided by the partition"


def test_an_incremental_scan_reads_the_appends_between_two_snapshots(floe, tables):
    client, _ = tables
    h = floe.root_headers()
    wh = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
    history = [s.snapshot_id for s in client.load_table(("plan", "events")).history()]
    r = requests.post(f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events/plan", headers=h, json={
        "start-snapshot-id": history[0], "end-snapshot-id": history[2]})
    assert r.status_code == 200, r.text
    records = sorted(t["data-file"]["record-count"] for t in r.json()["file-scan-tasks"])
    assert records == [20, 20], "the second and third appends, not the first or fourth"
    r = requests.post(f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events/plan", headers=h, json={
        "start-snapshot-id": history[2], "end-snapshot-id": history[0]})
    assert r.status_code == 400, "the start is not an ancestor of the end"


def test_planning_needs_read_data_and_reads_only_the_tables_own_manifests(floe, tables):
    """A principal who may only read metadata is refused; a writer who points its table's
    metadata at another table's manifest list, or copies that list into its own table, is
    refused, and the answer names nothing of the other table."""
    client, _ = tables
    h = floe.root_headers()
    wh = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]

    # A reader of metadata only.
    meta_reader = reader_of_events(floe, h, wh, "meta-reader", "TABLE_READ_METADATA")
    loaded = requests.get(f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events", headers=meta_reader)
    assert loaded.status_code == 200, "the reader may load the table's metadata"
    r = requests.post(f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events/plan", headers=meta_reader, json={})
    assert r.status_code == 403, r.text

    # A table whose snapshot names the victim's manifest list.
    victim = client.load_table(("plan", "events"))
    victim_list = victim.current_snapshot().manifest_list
    thief = client.create_table(("plan", "thief"), schema=SCHEMA)
    thief.append(batch(0, 1, "x", 0))
    thief = client.load_table(("plan", "thief"))
    snap = thief.current_snapshot()
    forged_id = snap.snapshot_id + 1
    t_url = f"{floe.uri}/v1/{wh}/namespaces/plan/tables/thief"
    r = requests.post(t_url, headers=h, json={"requirements": [], "updates": [{"action": "add-snapshot", "snapshot": {
        "snapshot-id": forged_id, "parent-snapshot-id": snap.snapshot_id, "sequence-number": snap.sequence_number + 1,
        "timestamp-ms": snap.timestamp_ms + 1, "manifest-list": victim_list, "summary": {"operation": "append"},
        "schema-id": 0}}, {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": forged_id}]})
    if r.status_code == 200:
        r = requests.post(f"{t_url}/plan", headers=h, json={})
        assert r.status_code == 403, r.text
        assert "events" not in r.text and victim_list not in r.text
    else:
        assert r.status_code in (400, 403), f"the commit is refused, or the plan is: {r.text}"

    # A copy of the victim's manifest list inside the thief's own location: its manifests are not.
    own_copy = thief.location() + "/metadata/copied-list.avro"
    shutil.copy(victim_list.removeprefix("file://"), own_copy.removeprefix("file://"))
    forged_id += 1
    r = requests.post(t_url, headers=h, json={"requirements": [], "updates": [{"action": "add-snapshot", "snapshot": {
        "snapshot-id": forged_id, "parent-snapshot-id": snap.snapshot_id, "sequence-number": snap.sequence_number + 2,
        "timestamp-ms": snap.timestamp_ms + 2, "manifest-list": own_copy, "summary": {"operation": "append"},
        "schema-id": 0}}, {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": forged_id}]})
    assert r.status_code == 200, r.text
    r = requests.post(f"{t_url}/plan", headers=h, json={})
    assert r.status_code == 403, r.text
    assert "events" not in r.text


def serving_events(config_toml):
    """A Floe with `config_toml`, the events table (four appends) and the events table's URL."""
    from conftest import FloeServer
    server = FloeServer(config_toml=config_toml)
    client = server.catalog()
    with_events(client)
    h = server.root_headers()
    wh = requests.get(f"{server.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
    return server, client, h, f"{server.uri}/v1/{wh}/namespaces/plan/tables"


@pytest.fixture
def split():
    """A Floe whose plans hold at most two data manifests each, with the events table (four
    appends: four data manifests), and a second table."""
    server, client, _, _ = serving_events("[planning]\nmanifests_per_task = 2\n")
    other = client.create_table(("plan", "other"), schema=SCHEMA, partition_spec=SPEC)
    for i in range(3):
        other.append(batch(1000 * i, 3, "oslo", i))
    yield server, client, server.catalog(**{"scan-planning-mode": "server"})
    server.stop()


def test_a_large_plan_is_split_into_plan_tasks_that_only_their_holder_can_use(split):
    floe, client, server = split
    assert assert_same(floe, client, server) == 80
    assert assert_same(floe, client, server, row_filter=EqualTo("city", "rome")) == 30
    h = floe.root_headers()
    wh = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
    table_url = f"{floe.uri}/v1/{wh}/namespaces/plan/tables/events"
    plan = requests.post(f"{table_url}/plan", headers=h, json={}).json()
    assert plan["status"] == "completed" and plan["file-scan-tasks"] == []
    assert len(plan["plan-tasks"]) == 2, "four data manifests, two per task"
    fetched = [requests.post(f"{table_url}/tasks", headers=h, json={"plan-task": t}) for t in plan["plan-tasks"]]
    assert all(r.status_code == 200 for r in fetched), [r.text for r in fetched]
    assert sum(t["data-file"]["record-count"] for r in fetched for t in r.json()["file-scan-tasks"]) == 80
    assert "status" not in fetched[0].json()

    def task_error(url, headers, token):
        r = requests.post(f"{url}/tasks", headers=headers, json={"plan-task": token})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["type"] == "NoSuchPlanTaskException", r.text
        assert "events" not in r.json()["error"]["message"]

    token = plan["plan-tasks"][0]
    header, payload, signature = token.split(".")
    # Forged: altered claims (the other manifests), or a signature of our own.
    import base64
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["data"]["manifests"] = [0, 100]
    altered = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    task_error(table_url, h, f"{header}.{altered}.{signature}")
    task_error(table_url, h, f"{header}.{payload}.{signature[:-4]}AAAA")
    task_error(table_url, h, "not-a-token")
    # The plan's id is not a plan task, and an access token is neither.
    task_error(table_url, h, plan["plan-id"])
    task_error(table_url, h, h["Authorization"].removeprefix("Bearer "))
    # Another table's plan task, and this table's task on another table.
    task_error(f"{floe.uri}/v1/{wh}/namespaces/plan/tables/other", h, token)
    # Another principal, who may read the table, cannot use the root's task or plan id.
    reader = reader_of_events(floe, h, wh, "reader", "TABLE_READ_DATA")
    assert requests.post(f"{table_url}/plan", headers=reader, json={}).status_code == 200
    task_error(table_url, reader, token)
    r = requests.get(f"{table_url}/plan/{plan['plan-id']}", headers=reader)
    assert r.status_code == 404 and r.json()["error"]["type"] == "NoSuchPlanIdException", r.text

    # The plan id: fetched again (same plan), cancelled, refreshing credentials for it.
    again = requests.get(f"{table_url}/plan/{plan['plan-id']}", headers=h)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "completed" and len(again.json()["plan-tasks"]) == 2
    assert requests.delete(f"{table_url}/plan/{plan['plan-id']}", headers=h).status_code == 204
    r = requests.delete(f"{table_url}/plan/{plan['plan-id'][:-4]}AAAA", headers=h)
    assert r.status_code == 404 and r.json()["error"]["type"] == "NoSuchPlanIdException", r.text
    assert requests.get(f"{table_url}/credentials", headers=h, params={"planId": plan["plan-id"]}).status_code == 200
    r = requests.get(f"{table_url}/credentials", headers=h, params={"planId": "forged"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NoSuchPlanIdException", r.text

    # The plan's snapshot is fixed: a later append does not change what its tasks read.
    client.load_table(("plan", "events")).append(batch(900, 5, "oslo", 5))
    later = [requests.post(f"{table_url}/tasks", headers=h, json={"plan-task": t}).json() for t in plan["plan-tasks"]]
    assert sum(t["data-file"]["record-count"] for r in later for t in r["file-scan-tasks"]) == 80


def polled(url, headers, plan_id):
    """Polls a plan until it is no longer `submitted`; its last answer."""
    import time
    for _ in range(200):
        r = requests.get(f"{url}/plan/{plan_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] != "submitted":
            return r.json()
        time.sleep(0.02)
    raise AssertionError("the plan stayed submitted")


def test_a_submitted_plan_is_polled_to_completion_cancelled_or_failed():
    """With `planning.submitted_after_ms = 0` every plan answers `submitted` and finishes in the
    background: polled to `completed` (with what a completed plan holds), `cancelled` after a
    cancel, `failed` with the error in the spec's shape when planning fails; a completed plan's
    id may be cancelled (Iceberg Java does so when a scan closes)."""
    floe, client, h, tables_url = serving_events("[planning]\nsubmitted_after_ms = 0\n")
    try:
        url = f"{tables_url}/events"
        r = requests.post(f"{url}/plan", headers=h, json={"filter": {"type": "eq", "term": "city", "value": "rome"}})
        assert r.status_code == 200, r.text
        submitted = r.json()
        assert submitted["status"] == "submitted" and submitted["plan-id"], submitted
        assert "file-scan-tasks" not in submitted and "storage-credentials" not in submitted
        done = polled(url, h, submitted["plan-id"])
        assert done["status"] == "completed", done
        assert sum(t["data-file"]["record-count"] for t in done["file-scan-tasks"]) == 30
        # Handed over once; the id still names the plan, planned again (in the background, as
        # on a replica that never held it).
        again = polled(url, h, submitted["plan-id"])
        assert again["status"] == "completed"
        assert sorted(t["data-file"]["file-path"] for t in again["file-scan-tasks"]) == \
            sorted(t["data-file"]["file-path"] for t in done["file-scan-tasks"])
        assert requests.delete(f"{url}/plan/{submitted['plan-id']}", headers=h).status_code == 204

        # Cancelled: a later poll says so. Another principal can neither poll nor cancel it.
        plan_id = requests.post(f"{url}/plan", headers=h, json={}).json()["plan-id"]
        wh = tables_url.split("/v1/")[1].split("/")[0]
        reader = reader_of_events(floe, h, wh, "reader", "TABLE_READ_DATA")
        r = requests.delete(f"{url}/plan/{plan_id}", headers=reader)
        assert r.status_code == 404 and r.json()["error"]["type"] == "NoSuchPlanIdException", r.text
        assert requests.delete(f"{url}/plan/{plan_id}", headers=h).status_code == 204
        assert requests.get(f"{url}/plan/{plan_id}", headers=h).json() == {"status": "cancelled"}

        # Failed: the table's manifest list is gone from storage.
        broken = client.create_table(("plan", "broken"), schema=SCHEMA, partition_spec=SPEC)
        broken.append(batch(0, 3, "oslo", 0))
        manifest_list = broken.refresh().current_snapshot().manifest_list
        Path(manifest_list.removeprefix("file://")).unlink()
        plan_id = requests.post(f"{tables_url}/broken/plan", headers=h, json={}).json()["plan-id"]
        failed = polled(f"{tables_url}/broken", h, plan_id)
        assert failed["status"] == "failed", failed
        assert set(failed["error"]) >= {"message", "type", "code"}, failed
        # As a plan answered at once would say (naming the caller's own table's file).
        assert (failed["error"]["type"], failed["error"]["code"]) == ("NotFoundException", 404), failed
        assert "does not exist" in failed["error"]["message"], failed
    finally:
        floe.stop()


def test_plans_in_flight_are_bounded_in_memory_and_answer_503_past_the_bound():
    """`planning.max_bytes_in_flight` at its least (what one plan reserves to start): a plan
    whose answer would pass it answers 503 with `Retry-After`, and the server goes on serving
    (load-table, a plan of an empty table)."""
    floe, client, h, tables_url = serving_events("[planning]\nmax_bytes_in_flight = 65536\n")
    try:
        r = requests.post(f"{tables_url}/events/plan", headers=h, json={})
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == 503 and "plan data" in r.json()["error"]["message"]
        assert requests.get(f"{tables_url}/events", headers=h).status_code == 200
        client.create_table(("plan", "empty"), schema=SCHEMA)
        r = requests.post(f"{tables_url}/empty/plan", headers=h, json={})
        assert r.status_code == 200 and r.json()["file-scan-tasks"] == [], r.text
        # What the refused plan reserved was given back: the same refusal, not another.
        r = requests.post(f"{tables_url}/events/plan", headers=h, json={})
        assert r.status_code == 503 and "plan data" in r.json()["error"]["message"], r.text
    finally:
        floe.stop()


def test_a_warehouse_set_to_server_planning_makes_pyiceberg_plan_on_the_server(floe, tables):
    client, _ = tables
    h = floe.root_headers()
    tenant = requests.get(f"{floe.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
    wh = requests.get(f"{floe.uri}/v1/config", params={"warehouse": "demo"}, headers=h).json()["overrides"]["prefix"]
    r = requests.patch(f"{floe.uri}/management/v1/tenants/{tenant}/warehouses/{wh}", headers=h,
                       json={"scan_planning_mode": "server"})
    assert r.status_code == 200, r.text
    told = floe.catalog()  # no scan-planning-mode of its own: /v1/config says server
    assert told.supports_server_side_planning()
    assert assert_same(floe, client, told, row_filter=EqualTo("city", "rome")) == 30


def test_spark_merge_on_read_deletes_are_planned_as_pyiceberg_plans_them(floe):
    """Position deletes (format 2) and deletion vectors (format 3) written by Spark's
    merge-on-read DELETE and UPDATE: server planning attaches each to the data files it applies
    to, and PyIceberg reads exactly the rows its own planning reads. (No client here writes
    equality deletes: Spark's merge-on-read writes position deletes.)"""
    from conftest import run_spark_sql
    statements = ["CREATE NAMESPACE rest.mor"]
    for version in (2, 3):
        t = f"rest.mor.v{version}"
        statements += [
            f"CREATE TABLE {t} (id bigint, city string) USING iceberg PARTITIONED BY (city) TBLPROPERTIES "
            f"('format-version'='{version}', 'write.delete.mode'='merge-on-read', "
            f"'write.update.mode'='merge-on-read')",
            f"INSERT INTO {t} SELECT id, CASE WHEN id % 3 = 0 THEN 'oslo' WHEN id % 3 = 1 THEN 'rome' ELSE 'lima' END "
            f"FROM range(0, 300)",
            f"INSERT INTO {t} SELECT id, 'oslo' FROM range(300, 330)",
            f"DELETE FROM {t} WHERE id % 10 = 0",
            f"UPDATE {t} SET id = id + 1000 WHERE id BETWEEN 100 AND 120",
            f"DELETE FROM {t} WHERE city = 'lima' AND id < 50",
        ]
    results = run_spark_sql(floe, statements)
    assert all("error" not in r for r in results), [r for r in results if "error" in r]
    client = floe.catalog()
    server = floe.catalog(**{"scan-planning-mode": "server"})
    for version in (2, 3):
        ident = ("mor", f"v{version}")
        deletes = [t for t in server.load_table(ident).scan().plan_files() if t.delete_files]
        assert deletes, f"format {version}: the plan attaches delete files"
        if version == 3:
            assert all(d.file_format.value == "PUFFIN" for t in deletes for d in t.delete_files)
        for scan in ({}, {"row_filter": EqualTo("city", "oslo")}, {"row_filter": GreaterThan("id", 1000)}):
            before = plans_counted(floe)
            mine = sorted(server.load_table(ident).scan(**scan).to_arrow()["id"].to_pylist())
            theirs = sorted(client.load_table(ident).scan(**scan).to_arrow()["id"].to_pylist())
            assert plans_counted(floe) == before + 1
            assert mine == theirs, (version, scan)
        expected = sorted({i for i in range(330) if i % 10 != 0 and not (i % 3 == 2 and i < 50)} - set(range(100, 121))
                          | {i + 1000 for i in range(100, 121) if i % 10 != 0})
        assert sorted(client.load_table(ident).scan().to_arrow()["id"].to_pylist()) == expected
