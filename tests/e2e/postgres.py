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
