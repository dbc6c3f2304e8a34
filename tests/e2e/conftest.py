"""Starts the real `floe` binary for end-to-end tests with real Iceberg clients."""

import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT_ID = "e2e-root"
ROOT_SECRET = "e2e-root-secret-0123"


def floe_binary() -> str:
    if os.environ.get("TEST_FLOE_BIN"):
        return os.environ["TEST_FLOE_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "floe" / "target"))
    return str(Path(target) / "debug" / "floe")


def stop_process(proc: subprocess.Popen, timeout: float = 10):
    """Terminates a server process, killing it when it does not stop in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FloeServer:
    """One Floe process with its own data directory."""

    def __init__(self, config_toml: str = "", env: dict | None = None, data: Path | None = None):
        self.dir = tempfile.TemporaryDirectory(prefix="floe-e2e-")
        self.data = data or Path(self.dir.name) / "data"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.config = Path(self.dir.name) / "floe.toml"
        self.config.write_text(config_toml)
        self.log_path = Path(self.dir.name) / "floe.log"
        self.env = {**os.environ, "FLOE_ROOT_CLIENT_ID": ROOT_ID, "FLOE_ROOT_CLIENT_SECRET": ROOT_SECRET,
                    "FLOE_LOG": "info", **(env or {})}
        self.start()

    def start(self):
        """Starts (or restarts) the process on the same port and data directory."""
        self.proc = subprocess.Popen(
            [floe_binary(), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data),
             "--config", str(self.config)],
            stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.uri}/health/ready", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"floe did not start:\n{self.log_path.read_text()}")

    def catalog(self, warehouse: str = "demo", **props):
        from pyiceberg.catalog import load_catalog
        return load_catalog("floe", **{
            "type": "rest", "uri": self.uri, "warehouse": warehouse,
            "credential": f"{ROOT_ID}:{ROOT_SECRET}",
            "oauth2-server-uri": f"{self.uri}/v1/oauth/tokens", **props})

    def recycle_bin(self, warehouse: str = "demo"):
        """The management path of `warehouse`'s recycle bin, and the root's headers."""
        import requests
        h = self.root_headers()
        tenant = requests.get(f"{self.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
        wh = requests.get(f"{self.uri}/v1/config", params={"warehouse": warehouse}, headers=h).json()["overrides"]["prefix"]
        return f"{self.uri}/management/v1/tenants/{tenant}/warehouses/{wh}/dropped", h

    def dropped(self, warehouse: str = "demo"):
        """What `warehouse`'s recycle bin holds."""
        import requests
        bin_url, h = self.recycle_bin(warehouse)
        r = requests.get(bin_url, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["dropped"]

    def purge_dropped(self, warehouse: str = "demo", timeout: float = 15):
        """Purges everything in `warehouse`'s recycle bin now and waits until it is empty."""
        import requests
        bin_url, h = self.recycle_bin(warehouse)
        for d in self.dropped(warehouse):
            r = requests.delete(f"{bin_url}/{d['id']}", headers=h)
            assert r.status_code == 202, r.text
        deadline = time.time() + timeout
        while self.dropped(warehouse):
            assert time.time() < deadline, f"the bin did not empty: {self.dropped(warehouse)}"
            time.sleep(0.1)

    def root_headers(self):
        """The root principal's `Authorization` header."""
        import requests
        r = requests.post(f"{self.uri}/v1/oauth/tokens", data={
            "grant_type": "client_credentials", "client_id": ROOT_ID, "client_secret": ROOT_SECRET})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def kill(self):
        """SIGKILL: no shutdown, no flush."""
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


@pytest.fixture
def floe():
    server = FloeServer()
    yield server
    server.stop()


class JsonServer:
    """A local HTTP server standing in for a cloud's token endpoints: `answer(path, form)` returns
    the JSON to send (or None for 404, or a `(status, JSON)` pair for an error answer); every
    request's path and form are recorded."""

    def __init__(self, answer):
        import json
        import threading
        import urllib.parse
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                recorded.append((self.path, form))
                body = answer(self.path, form)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                status = 200
                if isinstance(body, tuple):
                    status, body = body
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def shutdown(self):
        self.server.shutdown()


def spark_dir() -> Path:
    """The Spark client prepared by scripts/spark-env.sh (pyspark 3.5.9, Iceberg 1.10.2)."""
    d = Path(os.environ.get("TEST_SPARK_DIR", Path.home() / ".cache" / "floe" / "spark"))
    assert (d / ".ready-v1").exists(), f"Spark is not prepared in {d}: run scripts/spark-env.sh"
    return d


SPARK_SQL_SCRIPT = r"""
import json, sys
from pyspark.sql import SparkSession
uri, client, secret, jars, warehouse = sys.argv[1:6]
spark = (SparkSession.builder.master("local[1]")
         .config("spark.jars", f"{jars}/iceberg-spark-runtime-3.5_2.12-1.10.2.jar,{jars}/iceberg-shaded-deps.jar")
         .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.catalog.rest", "org.apache.iceberg.spark.SparkCatalog")
         .config("spark.sql.catalog.rest.type", "rest")
         .config("spark.sql.catalog.rest.uri", uri)
         .config("spark.sql.catalog.rest.warehouse", warehouse)
         .config("spark.sql.catalog.rest.credential", f"{client}:{secret}")
         .config("spark.sql.catalog.rest.oauth2-server-uri", f"{uri}/v1/oauth/tokens")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
for statement in json.loads(sys.stdin.read()):
    try:
        rows = [list(r) for r in spark.sql(statement).collect()]
        print("RESULT " + json.dumps({"sql": statement, "rows": rows}, default=str))
    except Exception as e:
        print("RESULT " + json.dumps({"sql": statement, "error": str(e)}))
"""


def run_sql(command: list[str], statements: list[str], timeout: int) -> list[dict]:
    """Runs an engine script that reads a JSON list of statements on stdin and prints one
    `RESULT {"sql", "rows"}` or `RESULT {"sql", "error"}` line per statement."""
    import json
    out = subprocess.run(command, input=json.dumps(statements), capture_output=True, text=True, timeout=timeout)
    results = [json.loads(l.removeprefix("RESULT ")) for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    assert out.returncode == 0 and len(results) == len(statements), out.stdout[-2000:] + out.stderr[-4000:]
    return results


def run_spark_sql(floe_server, statements: list[str], warehouse: str = "demo") -> list[dict]:
    """Runs SQL statements in one Spark session against Floe's REST catalog `rest`."""
    d = spark_dir()
    return run_sql([str(d / "venv" / "bin" / "python"), "-c", SPARK_SQL_SCRIPT, floe_server.uri, ROOT_ID, ROOT_SECRET,
                    str(d / "jars"), warehouse], statements, timeout=300)


DUCKDB_SQL_SCRIPT = r"""
import json, sys, duckdb, duckdb_extensions
uri, ext_dir, client, secret, warehouse = sys.argv[1:6]
con = duckdb.connect(config={"extension_directory": ext_dir, "autoinstall_known_extensions": "false"})
for name in ("httpfs", "avro", "iceberg"):
    duckdb_extensions.import_extension(name, con=con)
    con.execute(f"LOAD {name}")
con.execute(f"CREATE SECRET floe (TYPE iceberg, CLIENT_ID '{client}', CLIENT_SECRET '{secret}', OAUTH2_SERVER_URI '{uri}/v1/oauth/tokens')")
con.execute(f"ATTACH '{warehouse}' AS floe (TYPE iceberg, SECRET floe, ENDPOINT '{uri}')")
for statement in json.loads(sys.stdin.read()):
    try:
        rows = [list(r) for r in con.execute(statement).fetchall()]
        print("RESULT " + json.dumps({"sql": statement, "rows": rows}, default=str))
    except Exception as e:
        print("RESULT " + json.dumps({"sql": statement, "error": str(e)}))
"""


def run_duckdb_sql(floe_server, statements: list[str], warehouse: str = "demo") -> list[dict]:
    """Runs SQL statements in one DuckDB connection with Floe attached as `floe`, in a subprocess
    with a timeout (DuckDB can hang instead of failing)."""
    import sys
    with tempfile.TemporaryDirectory() as ext_dir:
        return run_sql([sys.executable, "-c", DUCKDB_SQL_SCRIPT, floe_server.uri, ext_dir, ROOT_ID, ROOT_SECRET,
                        warehouse], statements, timeout=180)
