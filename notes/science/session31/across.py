"""Across-seed t intervals (95%) of cpu_collect.sh's per-seed paired differences.

    python3 across.py paired_K.txt [gap_K.txt]

Reads each seed's "dimension n A B B-A [..]" lines (session12/paired.py's output) and, from a
gap file, each seed's "gap growth" per dimension (session19/gap.py's); prints per dimension the
seeds' values and their mean with a t interval over the seeds."""
import math
import re
import statistics
import sys

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}


def across(v):
    m = sum(v) / len(v)
    h = T975[len(v) - 1] * statistics.stdev(v) / math.sqrt(len(v))
    return f"{m:+.3f} [{m - h:+.3f}, {m + h:+.3f}]"


def report(title, vals):
    print(title)
    for k, v in vals.items():
        print(f"  {k:<14} per seed {', '.join(f'{x:+.3f}' for x in v)}; across seeds {across(v)}")


def collect(path, pattern):
    """Each seed's value per dimension: the lines of `path` that `pattern` matches, in order."""
    vals = {}
    for line in open(path):
        m = re.match(pattern, line)
        if m:
            vals.setdefault(m.group(1), []).append(float(m.group(2)))
    return vals


report("after minus base", collect(sys.argv[1], r"(\w+)\s+\d+\s+[\d.]+\s+[\d.]+\s+([+-][\d.]+)"))
if len(sys.argv) > 2:
    report("gap growth (with the image minus blind)",
           collect(sys.argv[2], r"(\w+)\s+n \d+:.*gap growth ([+-][\d.]+)"))
