"""Summarises wrk outputs of bench.sh into one table. Usage: report.py OUT_DIR"""

import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])
meta = json.loads((out / "meta.json").read_text())


def wrk(name):
    text = (out / f"{name}.txt").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = {}
    for p, v, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        pct[p] = float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    acked = re.search(r"ACKED (\d+)", text)
    conflicts = re.search(r"CONFLICTS (\d+)", text)
    return {"rps": rps, "p50_ms": pct.get("50"), "p99_ms": pct.get("99"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "acked": int(acked.group(1)) if acked else None,
            "conflicts": int(conflicts.group(1)) if conflicts else None}


rows = {name: wrk(name) for name in ["nginx_c8", "load_c1", "load_c8", "load_c64", "create_c8",
                                     "commit_solo_c1", "commit_shared_c8"]}
print(f"load-table response: {meta['bytes']} bytes")
print(f"{'run':<18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'acked':>8}{'409s':>7}")
for name, r in rows.items():
    f = lambda v: "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
    print(f"{name:<18}{r['rps']:>10.0f}{f(r['p50_ms']):>9}{f(r['p99_ms']):>9}{r['non_2xx']:>9}{f(r['acked']):>8}{f(r['conflicts']):>7}")
print(f"load-table at 8 connections = {rows['load_c8']['rps'] / rows['nginx_c8']['rps']:.2f} of nginx's static-file rate")
for table, run in (("solo", "commit_solo_c1"), ("shared", "commit_shared_c8")):
    found = meta["properties"][table]
    acked = rows[run]["acked"]
    print(f"commits on '{table}': {acked} acknowledged, {found} in the final metadata -> {'OK' if found == acked else 'LOST COMMITS'}")
print(f"floe RSS before/after the commit runs: {meta['rss_before_kb']} / {meta['rss_after_kb']} KiB")
