#!/usr/bin/env python3
"""cross/hot/ranked.py SYMS PHASES: for cross/hot/profile.sh.

SYMS: `address size name` per function of the profiled binary (from nm). PHASES: lines
`phase file`, each file callgrind's output with instruction addresses (--dump-instr=yes), as
cross/hot/scenario.py writes them. Prints `phase name` for every function that ran, each once,
in the first phase that ran it; within a phase by address (the ordinary layout's order).
"""
import bisect
import re
import sys

syms = sorted((int(a, 16), int(s, 16), n) for a, s, n in (l.split() for l in open(sys.argv[1])))
starts = [s[0] for s in syms]
phase_of = {}
dumps = sorted((int(p), f) for p, f in (l.split(None, 1) for l in open(sys.argv[2])))
for phase, path in dumps:
    path = path.strip()
    for line in open(path):
        m = re.match(r"^(0x[0-9a-f]+) ", line)
        if not m:
            continue
        a = int(m.group(1), 16)
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and syms[i][0] <= a < syms[i][0] + syms[i][1]:
            phase_of.setdefault(i, phase)
for i in sorted(phase_of, key=lambda i: (phase_of[i], i)):
    print(phase_of[i], syms[i][2])
