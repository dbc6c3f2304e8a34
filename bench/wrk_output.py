"""What the benchmark scripts share: reading wrk's output, and waiting for Floe to be ready."""

import re
import time
import urllib.request


def parse(text):
    """Requests/s, p50 and p99 in ms, non-2xx count, and the ACKED/CONFLICTS/THREAD lines commit.lua prints."""
    pct = {p: float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
           for p, v, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    field = lambda pattern: int(m.group(1)) if (m := re.search(pattern, text)) else None
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "p50": pct.get("50"), "p99": pct.get("99"), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "acked": field(r"ACKED (\d+)"), "conflicts": field(r"CONFLICTS (\d+)"),
            "threads": {int(t): int(n) for t, n in re.findall(r"THREAD (\d+) (\d+)", text)}}


def wait_ready(uri, seconds=30):
    """True once `uri`'s /health/ready answers, False when it does not within `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{uri}/health/ready", timeout=1)
            return True
        except OSError:
            time.sleep(0.1)
    return False
