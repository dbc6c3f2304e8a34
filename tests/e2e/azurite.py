"""Azurite, the Azure Blob emulator (npm package, installed by scripts/node-env.sh), for the tests."""

import os
import subprocess
import tempfile
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from conftest import free_port

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_bin() -> str:
    node = os.environ.get("TEST_NODE_DIR", str(Path.home() / ".cache" / "floe" / "node"))
    path = Path(node) / "node_modules" / ".bin" / "azurite-blob"
    assert path.exists(), f"Azurite is not installed in {node}: run scripts/node-env.sh"
    return str(path)


class Azurite:
    """`azurite-blob` in memory on a free loopback port."""

    def __init__(self, containers=("lake",)):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{ACCOUNT}"
        self.dir = tempfile.TemporaryDirectory(prefix="azurite-")
        self.log = open(Path(self.dir.name) / "azurite.log", "w")
        self.proc = subprocess.Popen(
            [azurite_bin(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
             "--disableTelemetry", "--skipApiVersionCheck", "--loose"],
            cwd=self.dir.name, stdout=self.log, stderr=subprocess.STDOUT)
        self.connection_string = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                                  f"BlobEndpoint={self.endpoint};")
        self.client = BlobServiceClient.from_connection_string(self.connection_string)
        deadline = time.time() + 30
        while True:
            try:
                self.client.get_service_properties()
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("Azurite did not start: " + (Path(self.dir.name) / "azurite.log").read_text())
                time.sleep(0.2)
        for c in containers:
            self.client.create_container(c)

    def names(self, container: str, prefix: str) -> list[str]:
        return [b.name for b in self.client.get_container_client(container).list_blobs(name_starts_with=prefix)]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.dir.cleanup()
