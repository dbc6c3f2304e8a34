"""schemathesis against the running server and its own OpenAPI document, every check on every
operation (tests/schemathesis/schemathesis.toml says where the document cannot say what the
server checks, and why): no 5xx, no undocumented status, content type, header or body, and no
schema-valid request refused. Bounded in time; the seed is printed so a failure can be replayed
with `--seed`."""

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from conftest import ROOT_ID, ROOT_SECRET

ROOT = Path(__file__).resolve().parents[2]
MAX_TIME = os.environ.get("TEST_FUZZ_SECONDS", "100")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(floe):
    token = requests.post(f"{floe.uri}/v1/oauth/tokens", data={
        "grant_type": "client_credentials", "client_id": ROOT_ID, "client_secret": ROOT_SECRET}).json()["access_token"]
    schemathesis = Path(sys.executable).with_name("schemathesis")
    out = subprocess.run(
        [str(schemathesis), "--config-file", str(ROOT / "tests" / "schemathesis" / "schemathesis.toml"), "run",
         str(ROOT / "openapi" / "floe.json"), "--url", floe.uri, "-H", f"Authorization: Bearer {token}",
         # One worker: CPython 3.11's parser keeps its recursion depth per interpreter, and
         # Hypothesis's parsing from two threads fails with "AST constructor recursion depth
         # mismatch" (gh-106905).
         "--max-time", MAX_TIME, "--workers", "1", "--no-color"],
        capture_output=True, text=True, timeout=int(MAX_TIME) + 240)
    report = out.stdout[-12000:] + out.stderr[-3000:]
    assert out.returncode == 0, report
    selected = re.search(r"Operations:\s+(\d+) selected / (\d+) total", out.stdout)
    assert selected and selected[1] == selected[2], report
    assert "Server error" not in out.stdout, report
