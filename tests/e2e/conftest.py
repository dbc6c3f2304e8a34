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
ROOT_SECRET = "e2e-root-secret"


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

    def __init__(self, config_toml: str = "", env: dict | None = None):
        self.dir = tempfile.TemporaryDirectory(prefix="floe-e2e-")
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
        data = Path(self.dir.name) / "data"
        self.proc = subprocess.Popen(
            [floe_binary(), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(data),
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
    the JSON to send (or None for 404); every request's path and form are recorded."""

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
                data = json.dumps(body).encode()
                self.send_response(200)
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
