"""Slow bodies (issue 23, escape 8): unauthenticated sockets send the headers of
`POST /v1/oauth/tokens` with `Content-Length: 4096` and part of the body, then go quiet. Meanwhile
another tenant loads its table one request at a time, and `/health/ready` is asked every 100 ms.

Reported, with the default configuration: the other tenant's load-table p50/p99 and how many of
its loads and readiness checks answered anything but 200, alone and during the attack; and what
the attacking sockets got back (408 once the body timeout passed, 503 past the connections allowed
per address, or nothing while they were held).

Usage: slow_bodies.py FLOE_BINARY OUT_DIR [SOCKETS] [SECONDS]. Prints one JSON line.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from floe_api import tenant_with_table, token_of
from wrk_output import wait_ready

binary, out = sys.argv[1], sys.argv[2]
sockets = int(sys.argv[3]) if len(sys.argv) > 3 else 1100
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 20
ROOT, SECRET = "bench", "bench-secret-0123456"


def get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError:
        status = 0
    return status, (time.perf_counter() - started) * 1000


def loads(url, token, until):
    """The quiet tenant: one load at a time, 2 ms apart, until `until`."""
    latencies, failed = [], 0
    while time.time() < until:
        status, ms = get(url, token)
        if status == 200:
            latencies.append(ms)
        else:
            failed += 1
        time.sleep(0.002)
    return latencies, failed


def readiness(uri, until, out):
    while time.time() < until:
        status, _ = get(f"{uri}/health/ready")
        out.append(status)
        time.sleep(0.1)


def attack(port, count, until, answers):
    """`count` sockets from 11 addresses other than the quiet tenant's (127.0.1.1-11), each sends
    the head and 100 bytes of a 4096-byte body, then waits."""
    head = (b"POST /v1/oauth/tokens HTTP/1.1\r\nHost: floe\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4096\r\n\r\n"
            + b"grant_type=client_credentials&client_id=x" + b"x" * 59)
    open_sockets = []
    for i in range(count):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.bind((f"127.0.1.{i % 11 + 1}", 0))
            s.connect(("127.0.0.1", port))
            s.sendall(head)
            s.setblocking(False)
            open_sockets.append(s)
        except OSError:
            answers["refused at connect"] = answers.get("refused at connect", 0) + 1
            s.close()
    while open_sockets and time.time() < until:
        for s in list(open_sockets):
            try:
                data = s.recv(256)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "closed"
            answers[status] = answers.get(status, 0) + 1
            open_sockets.remove(s)
            s.close()
        time.sleep(0.05)
    answers["still held at the end"] = len(open_sockets)
    for s in open_sockets:
        s.close()


def summary(latencies, failed):
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 2 else [0] * 99
    return {"loads": len(latencies) + failed, "failed": failed,
            "p50_ms": round(q[49], 3), "p99_ms": round(q[98], 3)}


def main():
    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "FLOE_ROOT_CLIENT_ID": ROOT, "FLOE_ROOT_CLIENT_SECRET": SECRET, "FLOE_LOG": "warn"}
    data = os.path.join(out, "data-slow")
    floe = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                            stdout=open(os.path.join(out, "floe-slow.log"), "w"), stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_ready(uri)
        root = token_of(uri, ROOT, SECRET)
        url, token = tenant_with_table(uri, root, "quiet")
        alone = summary(*loads(url, token, time.time() + 5))
        until = time.time() + seconds
        answers, ready = {}, []
        threads = [threading.Thread(target=attack, args=(port, sockets, until, answers)),
                   threading.Thread(target=readiness, args=(uri, until, ready))]
        for t in threads:
            t.start()
        time.sleep(1)
        during = summary(*loads(url, token, until - 0.5))
        for t in threads:
            t.join()
        print(json.dumps({"sockets": sockets, "seconds": seconds, "quiet_alone": alone,
                          "quiet_during_attack": during,
                          "ready_not_200": sum(1 for s in ready if s != 200), "ready_checks": len(ready),
                          "attack_answers": answers}))
    finally:
        floe.terminate()
        floe.wait()


main()
