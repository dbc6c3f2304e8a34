"""Summarises the wrk outputs of bench.sh and checks that no acknowledged commit is missing.
Usage: BENCH_TOKEN=.. BENCH_TABLES=<tables url> report.py OUT_DIR"""

import json
import os
import re
import sys
import urllib.request
from pathlib import Path

out = Path(sys.argv[1])
meta = json.loads((out / "meta.json").read_text())


def wrk(name):
    text = (out / f"{name}.txt").read_text()
    pct = {p: float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
           for p, v, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    field = lambda pattern: int(m.group(1)) if (m := re.search(pattern, text)) else None
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "p50_ms": pct.get("50"), "p99_ms": pct.get("99"), "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "acked": field(r"ACKED (\d+)"), "conflicts": field(r"CONFLICTS (\d+)"),
            "threads": {int(t): int(n) for t, n in re.findall(r"THREAD (\d+) (\d+)", text)}}


def properties(table):
    req = urllib.request.Request(f"{os.environ['BENCH_TABLES']}/{table}",
                                 headers={"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"})
    return json.load(urllib.request.urlopen(req))["metadata"]["properties"]


runs = ["nginx_c8", "load_c1", "load_c8", "load_c64", "create_c8", "commit_solo_c1", "commit_own_c8", "commit_shared_c8"]
rows = {name: wrk(name) for name in runs}
fmt = lambda v: "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
print(f"load-table response: {meta['bytes']} bytes")
print(f"{'run':<18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'acked':>8}{'409s':>7}")
for name, r in rows.items():
    print(f"{name:<18}{r['rps']:>10.0f}{fmt(r['p50_ms']):>9}{fmt(r['p99_ms']):>9}{r['non_2xx']:>9}{fmt(r['acked']):>8}{fmt(r['conflicts']):>7}")
print(f"load-table at 8 connections = {rows['load_c8']['rps'] / rows['nginx_c8']['rps']:.2f} of nginx's static-file rate")

# Every acknowledged commit must be in the final metadata: each thread's property counts its commits.
# commit_shared_c8 and commit_more_c8 both wrote `shared`; the later run's counts are what remain.
checks = [("solo", rows["commit_solo_c1"]["threads"], lambda t: "solo"),
          ("own", rows["commit_own_c8"]["threads"], lambda t: f"c{t}"),
          ("shared", wrk("commit_more_c8")["threads"], lambda t: "shared")]
for label, threads, table_of in checks:
    lost = []
    for tid, acked in threads.items():
        found = int(properties(table_of(tid)).get(f"bench.{tid}", 0))
        if found not in (acked, acked + 1):
            lost.append((tid, acked, found))
    print(f"commit check '{label}': {sum(threads.values())} acknowledged over {len(threads)} writers -> "
          + ("every one present" if not lost else f"MISMATCH {lost}"))
rss = meta["rss_kb"]
print(f"floe RSS: {rss[0] // 1024} MiB before commits, {rss[1] // 1024} MiB after 30 s of commits, "
      f"{rss[2] // 1024} MiB after 10 s more")
