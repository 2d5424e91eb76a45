#!/usr/bin/env python3
"""Instructions per source location from a QEMU instruction trace.

    qemu_trace.py TRACE ELF [DEPTH] [ROWS]

TRACE is what `qemu-system-arm -singlestep -d exec,nochain -D TRACE` wrote
(one line per executed instruction); ELF the image it ran (with debug
information). Prints each location's share: the innermost frame in Kantor's
own code (engine/src, firmware/src), or DEPTH frames of it, found with
addr2line (inlined frames included); DEPTH 0: the innermost function, its
lines summed.
"""
import collections
import re
import subprocess
import sys

log, elf = sys.argv[1], sys.argv[2]
depth = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 50


def name(function):
    """A function's last path segment; a closure's with its parent's."""
    parts = function.split("::")
    return "::".join(parts[-2:]) if parts[-1].startswith("{{") else parts[-1]


counts = collections.Counter()
with open(log, "rb") as f:
    for line in f:
        i = line.find(b"/")
        if i > 0:
            counts[line[i + 1:i + 9]] += 1
pcs = list(counts)
out = subprocess.run(["addr2line", "-e", elf, "-f", "-i", "-C", "-a"] + ["0x" + p.decode() for p in pcs],
                     capture_output=True, text=True, check=True).stdout
blocks = re.split(r"^0x", out, flags=re.M)[1:]
by_location = collections.Counter()
total = 0
for pc, block in zip(pcs, blocks):
    lines = block.strip().split("\n")[1:]
    frames = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2)]
    ours = [f"{name(fn)[:40]}@{loc.split('/')[-1]}" for fn, loc in frames
            if "engine/src" in loc or "firmware/src" in loc]
    if depth == 0:
        ours = [o.split("@")[0] for o in ours]
    key = " <- ".join(ours[:max(depth, 1)]) if ours else (frames[0][0][:50] if frames else "?")
    by_location[key] += counts[pc]
    total += counts[pc]
print(f"{total} instructions")
for key, n in by_location.most_common(rows):
    print(f"{n / total * 100:6.2f}% {n:>11} {key}")
