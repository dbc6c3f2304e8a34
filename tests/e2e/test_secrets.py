"""No secret reaches the logs or the store's files in plain text: the root secret, a principal's
secret and the tokens used, checked by reading every file the server wrote."""

from pathlib import Path

import requests

from conftest import ROOT_SECRET, FloeServer


def test_secrets_never_appear_in_logs_or_on_disk():
    floe = FloeServer(env={"FLOE_LOG": "debug"})
    try:
        root = requests.post(f"{floe.uri}/v1/oauth/tokens", data={
            "grant_type": "client_credentials", "client_id": "e2e-root", "client_secret": ROOT_SECRET}).json()["access_token"]
        h = {"Authorization": f"Bearer {root}"}
        tenant = requests.get(f"{floe.uri}/management/v1/whoami", headers=h).json()["tenant_id"]
        created = requests.post(f"{floe.uri}/management/v1/tenants/{tenant}/principals", headers=h, json={"name": "etl"}).json()
        secret = created["client_secret"]
        token = requests.post(f"{floe.uri}/v1/oauth/tokens", auth=(created["client_id"], secret),
                              data={"grant_type": "client_credentials"}).json()["access_token"]
        requests.get(f"{floe.uri}/management/v1/whoami", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        requests.post(f"{floe.uri}/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": created["client_id"],
                                                          "client_secret": "wrong-" + secret})
    finally:
        floe.proc.terminate()
        floe.proc.wait(timeout=15)
    written = [p for p in Path(floe.dir.name).rglob("*") if p.is_file() and p.name != "floe.toml"]
    assert any(p.name == "floe.log" for p in written) and any("catalog" in str(p) for p in written)
    assert "principal" in (Path(floe.dir.name) / "floe.log").read_text(), "debug logs were written"
    for path in written:
        data = path.read_bytes()
        for label, value in [("root secret", ROOT_SECRET), ("principal secret", secret), ("root token", root), ("token", token)]:
            assert value.encode() not in data, f"{label} found in {path}"
    floe.dir.cleanup()
