"""Noisy neighbours and overload.

Noisy neighbours: one tenant ("noisy") loads its table at 64 connections as fast as it can while
another ("quiet") loads its own at one connection, one request per millisecond; the quiet tenant's
load-table p50/p99 alone and beside the noisy one, without and with a per-tenant rate.

Floor: the same two loads with the noisy tenant on a second Floe process, so the two share only
the machine (its two cores, with wrk on them too): no scheduling inside Floe can do better than
this for the quiet tenant while the noisy one runs at full speed.

Overload: 256 connections commit to one table (each commit waits for the one before it), with the
default capacity (`max_in_flight` 1024: every commit queues) and with `max_in_flight` = SHED_AT;
a connection whose commit was shed waits a second before its next (Retry-After). Reported:
commits acknowledged per second, how many answers were 503, and the p50/p99 of every answer.

Usage: tenants.py FLOE_BINARY OUT_DIR DURATION RATE [SHED_AT]. Prints one JSON line per run and
two tables.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

from floe_api import tenant_with_table, token_of
from wrk_output import parse, wait_ready

binary, out, duration, rate = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
shed_at = int(sys.argv[5]) if len(sys.argv) > 5 else 16
here = os.path.dirname(os.path.abspath(__file__))
ROOT, SECRET = "bench", "bench-secret-0123456"


def wrk(url, token, connections, threads, script, delay_ms=None):
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_DELAY_MS": str(delay_ms or 0)}
    return subprocess.Popen(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency",
                             "-s", os.path.join(here, script), url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def serve(port, settings):
    """Floe on `port` with `settings` (FLOE_* variables) on a new data directory, once it is ready."""
    env = {**os.environ, "FLOE_ROOT_CLIENT_ID": ROOT, "FLOE_ROOT_CLIENT_SECRET": SECRET, "FLOE_LOG": "warn",
           **settings}
    data = os.path.join(out, f"data-{port}")
    floe = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                            stdout=open(os.path.join(out, f"floe-{port}.log"), "w"), stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    if not wait_ready(uri):
        floe.terminate()
        raise SystemExit("Floe did not start")
    return floe, uri


def run(label, limit):
    floe, uri = serve(18600 + (limit > 0), {"FLOE_LIMITS__TENANT_REQUESTS_PER_SEC": str(limit),
                                            "FLOE_LIMITS__TENANT_MAX_WAIT_MS": "1000"})
    try:
        root = token_of(uri, ROOT, SECRET)
        quiet_url, quiet = tenant_with_table(uri, root, "quiet")
        noisy_url, noisy = tenant_with_table(uri, root, "noisy")
        alone = parse(wrk(quiet_url, quiet, 1, 1, "paced_load.lua", 1).communicate()[0])
        loud = wrk(noisy_url, noisy, 64, 2, "load_table.lua")
        time.sleep(1)
        beside = parse(wrk(quiet_url, quiet, 1, 1, "paced_load.lua", 1).communicate()[0])
        noise = parse(loud.communicate()[0])
        result = {"run": label, "limit": limit, "quiet_alone": alone, "quiet_beside_noisy": beside, "noisy": noise}
        print(json.dumps(result))
        return result
    finally:
        floe.terminate()
        floe.wait()


def floor():
    """The noisy tenant on its own Floe process: what sharing the machine alone costs the quiet one."""
    quiet_floe, quiet_uri = serve(18604, {})
    noisy_floe, noisy_uri = serve(18605, {})
    try:
        quiet_url, quiet = tenant_with_table(quiet_uri, token_of(quiet_uri, ROOT, SECRET), "quiet")
        noisy_url, noisy = tenant_with_table(noisy_uri, token_of(noisy_uri, ROOT, SECRET), "noisy")
        alone = parse(wrk(quiet_url, quiet, 1, 1, "paced_load.lua", 1).communicate()[0])
        loud = wrk(noisy_url, noisy, 64, 2, "load_table.lua")
        time.sleep(1)
        beside = parse(wrk(quiet_url, quiet, 1, 1, "paced_load.lua", 1).communicate()[0])
        result = {"run": "noisy tenant on another Floe process (the machine's floor)", "limit": 0,
                  "quiet_alone": alone, "quiet_beside_noisy": beside, "noisy": parse(loud.communicate()[0])}
        print(json.dumps(result))
        return result
    finally:
        for floe in (quiet_floe, noisy_floe):
            floe.terminate()
            floe.wait()


def overload(label, max_in_flight):
    """256 connections committing to one table; the answers, and the server's count of shed requests."""
    floe, uri = serve(18602 + (max_in_flight < 1024), {"FLOE_MAX_IN_FLIGHT": str(max_in_flight)})
    try:
        url, token = tenant_with_table(uri, token_of(uri, ROOT, SECRET), "busy")
        # Clients that honour Retry-After (1 s): a shed request is retried a second later.
        env = {**os.environ, "BENCH_TOKEN": token, "BENCH_RETRY_AFTER_MS": "1000"}
        # One thread per connection would be 256 threads on 2 cores; commit.lua's per-thread
        # property check is not needed here, only the answers.
        text = subprocess.run(["wrk", "-t2", "-c256", f"-d{duration}", "--latency", "--timeout", "30s",
                               "-s", os.path.join(here, "commit.lua"), url],
                              capture_output=True, text=True, env=env).stdout
        result = {"run": label, "max_in_flight": max_in_flight, **parse(text)}
        metrics = urllib.request.urlopen(f"{uri}/metrics").read().decode()
        result["shed"] = sum(float(line.split()[-1]) for line in metrics.splitlines()
                             if line.startswith("floe_requests_shed_total"))
        print(json.dumps(result))
        return result
    finally:
        floe.terminate()
        floe.wait()


results = [run("no per-tenant rate", 0), run(f"{rate} requests/s per tenant", rate), floor()]
overloads = [overload("max_in_flight 1024 (default)", 1024), overload(f"max_in_flight {shed_at}", shed_at)]
print()
print("| run | quiet alone p50 / p99 | quiet beside noisy p50 / p99 | p99 ratio | noisy req/s (non-2xx) |")
print("|---|---|---|---|---|")
for r in results:
    a, b, n = r["quiet_alone"], r["quiet_beside_noisy"], r["noisy"]
    print(f"| {r['run']} | {a['p50']:.2f} / {a['p99']:.2f} ms | {b['p50']:.2f} / {b['p99']:.2f} ms | "
          f"{b['p99'] / a['p99']:.1f}x | {n['rps']:.0f} ({n['non2xx']}) |")
print()
print("| run | commits acknowledged/s | answers not 2xx (shed by the server) | p50 / p99 of every answer |")
print("|---|---|---|---|")
for r in overloads:
    print(f"| {r['run']} | {r['acked'] / float(duration.rstrip('s')):.0f} | {r['non2xx']} ({r['shed']:.0f}) | "
          f"{r['p50']:.2f} / {r['p99']:.2f} ms |")
