"""Azurite, the Azure Blob emulator (npm package, installed by scripts/node-env.sh), for the tests."""

import os
import subprocess
import tempfile
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from conftest import free_port, stop_process

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

    def __init__(self, containers=("lake",), oauth=False):
        """With `oauth`, Azurite serves HTTPS with a self-signed certificate (`self.ca_bundle`
        trusts it) and accepts Entra ID bearer tokens, so user-delegation keys work."""
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="azurite-")
        self.log = open(Path(self.dir.name) / "azurite.log", "w")
        extra, scheme, self.ca_bundle = [], "http", None
        if oauth:
            d = Path(self.dir.name)
            cert, key = d / "cert.pem", d / "key.pem"
            run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)
            # A test CA and a server certificate it signs (rustls refuses a self-signed leaf).
            run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=floe test CA",
                "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
            run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
                "-out", str(d / "server.csr"))
            (d / "ext.cnf").write_text("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n"
                                       "extendedKeyUsage=serverAuth\n")
            run("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                "-CAcreateserial", "-days", "2", "-extfile", str(d / "ext.cnf"), "-out", str(cert))
            system = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
            self.ca_bundle = str(d / "ca-bundle.pem")
            Path(self.ca_bundle).write_text((system.read_text() if system.exists() else "") + (d / "ca.pem").read_text())
            extra, scheme = ["--cert", str(cert), "--key", str(key), "--oauth", "basic"], "https"
        self.endpoint = f"{scheme}://127.0.0.1:{self.port}/{ACCOUNT}"
        self.proc = subprocess.Popen(
            [azurite_bin(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
             "--disableTelemetry", "--skipApiVersionCheck", "--loose", *extra],
            cwd=self.dir.name, stdout=self.log, stderr=subprocess.STDOUT)
        self.connection_string = (f"DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                                  f"BlobEndpoint={self.endpoint};")
        self.client = BlobServiceClient.from_connection_string(
            self.connection_string, **({"connection_verify": self.ca_bundle} if oauth else {}))
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
        stop_process(self.proc)
        self.log.close()
        self.dir.cleanup()
