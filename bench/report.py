"""Summarises the wrk outputs of bench.sh and checks that no acknowledged commit is missing.
Usage: BENCH_TOKEN=.. BENCH_TABLES=<tables url> report.py OUT_DIR"""

import json
import os
import sys
import urllib.request
from pathlib import Path

import wrk_output

out = Path(sys.argv[1])
meta = json.loads((out / "meta.json").read_text())


def wrk(name):
    return wrk_output.parse((out / f"{name}.txt").read_text())


def properties(table):
    req = urllib.request.Request(f"{os.environ['BENCH_TABLES']}/{table}",
                                 headers={"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"})
    return json.load(urllib.request.urlopen(req))["metadata"]["properties"]


runs = ["nginx_c8", "nginx_c64", "load_1w_c8", "load_1w_c64", "load_c1", "load_c8", "load_c64", "create_c8", "commit_solo_c1", "commit_own_c8", "commit_shared_c8"]
rows = {name: wrk(name) for name in runs}
fmt = lambda v: "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
print(f"load-table response: {meta['bytes']} bytes")
print(f"{'run':<18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'acked':>8}{'409s':>7}")
for name, r in rows.items():
    print(f"{name:<18}{r['rps']:>10.0f}{fmt(r['p50']):>9}{fmt(r['p99']):>9}{r['non2xx']:>9}{fmt(r['acked']):>8}{fmt(r['conflicts']):>7}")
for workers, run in (("one worker, as nginx", "load_1w"), ("a worker per core", "load")):
    for c in (8, 64):
        floe, nginx = rows[f"{run}_c{c}"], rows[f"nginx_c{c}"]
        print(f"load-table ({workers}) at {c} connections = {floe['rps'] / nginx['rps']:.2f} of nginx's "
              f"static-file rate, p99 {floe['p99']:.2f} ms = {floe['p99'] / nginx['p99']:.2f} of nginx's {nginx['p99']:.2f} ms")

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
