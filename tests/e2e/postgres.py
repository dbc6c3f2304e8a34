"""A fresh PostgreSQL database for one test module, on the machine's server (psql client)."""

import os
import subprocess
import uuid
from urllib.parse import urlparse, urlunparse

ADMIN_URL = os.environ.get("FLOE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                          check=True, capture_output=True, text=True).stdout


class Database:
    """`floe_e2e_<random>`, dropped (with its connections) by `drop()`."""

    def __init__(self):
        self.name = f"floe_e2e_{uuid.uuid4().hex}"
        psql(ADMIN_URL, f"CREATE DATABASE {self.name}")
        self.url = urlunparse(urlparse(ADMIN_URL)._replace(path=f"/{self.name}"))

    def query(self, sql: str) -> str:
        return psql(self.url, sql)

    def drop(self):
        psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class Cluster:
    """A PostgreSQL cluster of the test's own (`initdb`, run as the `postgres` user when the
    test runs as root), on its own port: one the test may stop and start."""

    def __init__(self):
        import shutil
        import tempfile
        from conftest import free_port
        self.dir = tempfile.mkdtemp(prefix="floe-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        self.bin = lambda name: os.path.join(bindir, name) if bindir else name
        self.run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        psql(self.admin_url, "CREATE DATABASE floe")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/floe"

    @property
    def admin_url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, name, *args):
        subprocess.run([*self.as_postgres, self.bin(name), *args], check=True, capture_output=True, text=True)

    def start(self):
        self.run("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"), "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode="fast"):
        self.run("pg_ctl", "-D", self.data, "-w", "-m", mode, "stop")

    def destroy(self):
        import shutil
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
