"""Reads callgrind output (the format's own names, compressed or not) and prints, per request,
the instructions spent in the functions that cost most by themselves, and in memcpy and memset
with the callers that spent them. Usage: callgrind_costs.py REQUESTS FILE... (bench-callgrind.sh
runs it). callgrind_annotate attributes everything to `clone` on these multi-threaded dumps, so
the totals are summed here from the raw cost lines."""

import collections
import re
import sys

NAME = re.compile(r"^(c?fn)=\((\d+)\)(?: (.*))?$")


def parse(paths):
    own, calls = collections.Counter(), collections.Counter()
    for path in paths:
        names, fn, callee, in_call = {}, None, None, False
        for line in open(path, errors="replace"):
            line = line.rstrip("\n")
            if not line:
                continue
            if line[0].isdigit() or line[0] in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if in_call:
                    calls[(fn, callee)] += cost
                    in_call = False
                else:
                    own[fn] += cost
                continue
            named = NAME.match(line)
            if named:
                key, ident, name = named.groups()
                if name:
                    names[ident] = name
                if key == "fn":
                    fn = names.get(ident, ident)
                else:
                    callee = names.get(ident, ident)
            elif line.startswith("calls="):
                in_call = True
    return own, calls


def main():
    requests, paths = int(sys.argv[1]), sys.argv[2:]
    own, calls = parse(paths)
    print("instructions per request by the function itself (top 15):")
    for fn, cost in own.most_common(15):
        print(f"{cost // requests:>9,}  {fn[:150]}")
    for what in ("memcpy", "memset"):
        by_caller = collections.Counter()
        for (caller, callee), cost in calls.items():
            if what in (callee or ""):
                by_caller[caller] += cost
        total = sum(by_caller.values())
        print(f"{what}: {total // requests:,} per request; its callers:")
        for caller, cost in by_caller.most_common(4):
            print(f"{cost // requests:>9,}  {caller[:150]}")


if __name__ == "__main__":
    main()
