"""8 writers append snapshots to one table for a fixed time, as Iceberg clients do: load, commit with
`assert-ref-snapshot-id main`, retry on 409. Reports commits/s, 409s and checks that every
acknowledged snapshot is on the final snapshot chain.
Usage: appenders.py TABLE_URL TOKEN SECONDS [WRITERS]"""

import json
import sys
import threading
import time

import requests

url, token, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
writers = int(sys.argv[4]) if len(sys.argv) > 4 else 8
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
acked, conflicts, latencies = [], [0], []
lock = threading.Lock()
deadline = time.time() + seconds


def append_body(md, snapshot_id):
    parent = md.get("current-snapshot-id")
    parent = parent if parent is not None and parent >= 0 else None
    snapshot = {"snapshot-id": snapshot_id, "sequence-number": md.get("last-sequence-number", 0) + 1,
                "timestamp-ms": int(time.time() * 1000), "summary": {"operation": "append"},
                "manifest-list": f"{md['location']}/metadata/snap-{snapshot_id}.avro", "schema-id": 0}
    if parent is not None:
        snapshot["parent-snapshot-id"] = parent
    return {"requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": parent}],
            "updates": [{"action": "add-snapshot", "snapshot": snapshot},
                        {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": snapshot_id}]}


def writer(w):
    session, n = requests.Session(), 0
    while time.time() < deadline:
        md = session.get(url, headers=headers).json()["metadata"]
        n += 1
        snapshot_id = (w + 1) * 10_000_000 + n
        start = time.perf_counter()
        r = session.post(url, headers=headers, data=json.dumps(append_body(md, snapshot_id)))
        with lock:
            if r.status_code == 200:
                acked.append(snapshot_id)
                latencies.append(time.perf_counter() - start)
            elif r.status_code == 409:
                conflicts[0] += 1
            else:
                raise SystemExit(f"unexpected {r.status_code}: {r.text}")


threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
began = time.time()
[t.start() for t in threads]
[t.join() for t in threads]
elapsed = time.time() - began
md = requests.get(url, headers=headers).json()["metadata"]
parents = {s["snapshot-id"]: s.get("parent-snapshot-id") for s in md["snapshots"]}
chain, cursor = set(), md.get("current-snapshot-id")
while cursor is not None and cursor >= 0:
    chain.add(cursor)
    cursor = parents.get(cursor)
missing = set(acked) - chain
latencies.sort()
p = lambda q: latencies[int(q * (len(latencies) - 1))] * 1000 if latencies else 0
print(f"appenders_c{writers}: {len(acked)} commits in {elapsed:.1f}s = {len(acked) / elapsed:.0f}/s, "
      f"{conflicts[0]} x 409 (retried), commit p50 {p(0.5):.1f} ms p99 {p(0.99):.1f} ms; "
      + ("every acknowledged snapshot is on the chain" if not missing else f"MISSING {len(missing)}"))
