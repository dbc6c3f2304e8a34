"""Every engine's everyday DDL, unmodified: DuckDB, Spark (Iceberg Java) and PyIceberg create
tables on Floe's local warehouse with and without `format-version`, write to them, and PyIceberg
reads back what each wrote, at the format version asked for."""

import pyarrow as pa
import pytest

from conftest import ROOT_ID, ROOT_SECRET, run_duckdb_sql, run_spark_sql


def rows(result: dict) -> list:
    assert "error" not in result, f"{result['sql']}: {result['error'][:1500]}"
    return result["rows"]


def assert_tables_read_back(cat, namespace: str, expected: dict):
    """PyIceberg loads each table at its format version, without `format-version` among its
    properties, and reads the rows `expected[name]` gives (column -> values, in order)."""
    for name, (version, data) in expected.items():
        table = cat.load_table((namespace, name))
        assert table.metadata.format_version == version, name
        assert "format-version" not in table.properties, name
        got = table.scan().to_arrow().sort_by(list(data)[0]).to_pydict()
        assert {k: got[k] for k in data} == data, name


def test_duckdb_creates_tables_with_and_without_format_version(floe):
    results = run_duckdb_sql(floe, [
        "CREATE SCHEMA floe.duck",
        "CREATE TABLE floe.duck.plain (id BIGINT, name VARCHAR)",
        "INSERT INTO floe.duck.plain VALUES (1, 'a'), (2, 'b')",
        "CREATE TABLE floe.duck.ctas AS SELECT 42 AS x",
        "CREATE TABLE floe.duck.v2 (id INTEGER) WITH ('format-version'='2')",
        "INSERT INTO floe.duck.v2 VALUES (5), (6)",
        "UPDATE floe.duck.v2 SET id = 7 WHERE id = 6",
        "CREATE TABLE floe.duck.v3 (id INTEGER) WITH ('format-version'='3')",
        "INSERT INTO floe.duck.v3 VALUES (9)",
        "CREATE TABLE floe.duck.v1 (id INTEGER) WITH ('format-version'='1')",
        "CREATE TABLE floe.duck.v7 (id INTEGER) WITH ('format-version'='7')",
        "SELECT count(*) FROM floe.duck.plain",
    ])
    for r in results[:10]:
        rows(r)
    assert "format-version=7 is not supported: use 1, 2 or 3" in results[10]["error"]
    assert rows(results[11]) == [[2]]

    cat = floe.catalog()
    assert_tables_read_back(cat, "duck", {
        "plain": (2, {"id": [1, 2], "name": ["a", "b"]}), "ctas": (2, {"x": [42]}),
        "v2": (2, {"id": [5, 7]}), "v3": (3, {"id": [9]}), "v1": (1, {"id": []})})
    assert ("duck", "v7") not in cat.list_tables("duck")


def test_spark_creates_replaces_and_upgrades_tables_by_format_version(floe):
    results = run_spark_sql(floe, [
        "CREATE NAMESPACE rest.spark",
        "CREATE TABLE rest.spark.v1 (id bigint, s string) USING iceberg TBLPROPERTIES ('format-version'='1')",
        "CREATE TABLE rest.spark.v2 (id bigint) USING iceberg TBLPROPERTIES ('format-version'='2')",
        "CREATE TABLE rest.spark.v3 (id bigint) USING iceberg TBLPROPERTIES ('format-version'='3')",
        "CREATE TABLE rest.spark.plain (id bigint) USING iceberg",
        "INSERT INTO rest.spark.v1 VALUES (1, 'a')",
        "INSERT INTO rest.spark.v2 VALUES (2)",
        "INSERT INTO rest.spark.v3 VALUES (3)",
        "CREATE TABLE rest.spark.ctas USING iceberg TBLPROPERTIES ('format-version'='2') AS SELECT 7 AS x",
        "REPLACE TABLE rest.spark.ctas USING iceberg AS SELECT 8 AS y, 'z' AS z",
        "CREATE OR REPLACE TABLE rest.spark.rtas USING iceberg TBLPROPERTIES ('format-version'='3') AS SELECT 9 AS y",
        "ALTER TABLE rest.spark.v2 SET TBLPROPERTIES ('format-version'='3')",
        "CREATE TABLE rest.spark.v9 (id bigint) USING iceberg TBLPROPERTIES ('format-version'='9')",
        "SELECT * FROM rest.spark.ctas",
    ])
    for r in results[:12]:
        rows(r)
    assert "format-version" in results[12]["error"]
    assert rows(results[13]) == [[8, "z"]]

    cat = floe.catalog()
    assert_tables_read_back(cat, "spark", {
        "v1": (1, {"id": [1]}), "v2": (3, {"id": [2]}), "v3": (3, {"id": [3]}), "plain": (2, {"id": []}),
        "ctas": (2, {"y": [8], "z": ["z"]}), "rtas": (3, {"y": [9]})})
    assert len(cat.load_table(("spark", "ctas")).metadata.snapshots) == 2, "CTAS, then the replacement"


@pytest.mark.parametrize("version", [None, 1, 2, 3])
def test_pyiceberg_creates_tables_at_each_format_version(floe, version):
    cat = floe.catalog()
    cat.create_namespace(("py",))
    properties = {} if version is None else {"format-version": str(version), "owner": "analytics"}
    table = cat.create_table(("py", "t"), schema=pa.schema([("id", pa.int64())]), properties=properties)
    # PyIceberg 0.12 writes v1 and v2 manifests only; the Spark test writes and PyIceberg reads v3.
    written = [1, 2, 3] if version != 3 else []
    if written:
        table.append(pa.table({"id": pa.array(written, pa.int64())}))
    loaded = cat.load_table(("py", "t"))
    assert loaded.metadata.format_version == (version or 2)
    assert "format-version" not in loaded.properties
    assert loaded.properties.get("owner") == (None if version is None else "analytics")
    assert sorted(loaded.scan().to_arrow()["id"].to_pylist()) == written


def test_pyiceberg_refuses_an_unsupported_format_version_clearly(floe):
    from pyiceberg.exceptions import BadRequestError
    cat = floe.catalog()
    cat.create_namespace(("py",))
    with pytest.raises(BadRequestError, match="format-version=4 is not supported: use 1, 2 or 3"):
        cat.create_table(("py", "t"), schema=pa.schema([("id", pa.int64())]), properties={"format-version": "4"})
    assert cat.list_tables("py") == []


def warehouse_root(floe_server, name: str = "demo") -> str:
    import requests
    token = requests.post(f"{floe_server.uri}/v1/oauth/tokens", data={
        "grant_type": "client_credentials", "client_id": ROOT_ID, "client_secret": ROOT_SECRET}).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    tenant = requests.get(f"{floe_server.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
    listed = requests.get(f"{floe_server.uri}/management/v1/tenants/{tenant}/warehouses", headers=h).json()
    return next(w["storage"]["root"] for w in listed["warehouses"] if w["name"] == name)


def test_spark_places_a_namespace_and_its_tables_at_a_location(floe):
    root = warehouse_root(floe)
    results = run_spark_sql(floe, [
        f"CREATE NAMESPACE rest.sales LOCATION '{root}/sales'",
        "CREATE TABLE rest.sales.orders (id bigint) USING iceberg",
        "INSERT INTO rest.sales.orders VALUES (1), (2)",
        "DESCRIBE NAMESPACE EXTENDED rest.sales",
        "CREATE NAMESPACE rest.elsewhere LOCATION 'file:///tmp/not-the-warehouse'",
        f"CREATE NAMESPACE rest.inside LOCATION '{root}/sales/inside'",
        f"CREATE NAMESPACE rest.around LOCATION '{root}'",
    ])
    for r in results[:4]:
        rows(r)
    assert f"{root}/sales" in str(results[3]["rows"])
    assert "outside warehouse 'demo'" in results[4]["error"], results[4]["error"][:500]
    assert "overlaps the location of another table, view or namespace" in results[5]["error"]
    assert "outside warehouse" in results[6]["error"] or "overlaps" in results[6]["error"]

    cat = floe.catalog()
    assert cat.load_namespace_properties("sales")["location"] == f"{root}/sales"
    orders = cat.load_table(("sales", "orders"))
    assert orders.location().startswith(f"{root}/sales/")
    assert sorted(orders.scan().to_arrow()["id"].to_pylist()) == [1, 2]
    assert "elsewhere" not in str(cat.list_namespaces())


def test_pyiceberg_creates_tables_under_its_namespace_location(floe):
    from pyiceberg.exceptions import BadRequestError
    root = warehouse_root(floe)
    cat = floe.catalog()
    cat.create_namespace("eu", properties={"location": f"{root}/eu/"})
    assert cat.load_namespace_properties("eu")["location"] == f"{root}/eu"
    table = cat.create_table(("eu", "t"), schema=pa.schema([("id", pa.int64())]))
    assert table.location().startswith(f"{root}/eu/")
    table.append(pa.table({"id": pa.array([5], pa.int64())}))
    # Another namespace cannot take a location inside it, nor place a table there.
    cat.create_namespace("us")
    with pytest.raises(BadRequestError, match="overlaps the location"):
        cat.create_table(("us", "t"), schema=pa.schema([("id", pa.int64())]), location=f"{root}/eu/mine")
    with pytest.raises(BadRequestError, match="overlaps the location"):
        cat.update_namespace_properties("us", updates={"location": f"{root}/eu/us"})
    with pytest.raises(BadRequestError, match="server's own layout"):
        cat.update_namespace_properties("us", updates={"location": f"{root}/{'ab' * 16}"})
    cat.update_namespace_properties("us", updates={"location": f"{root}/us"})
    assert cat.create_table(("us", "t"), schema=pa.schema([("id", pa.int64())])).location().startswith(f"{root}/us/")
