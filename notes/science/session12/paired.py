"""Paired difference of two judges on the same bench items, per dimension and overall.

    python3 paired.py A.judgements.jsonl B.judgements.jsonl

Each file is an `evaluate` node's `judgements` port exported with `judgeflow export ... --format
jsonl`; the items are matched by `pair_id` (the same bench, the same seed; each node draws its own
order of A and B per item, so the two may show an item in different orders). An item
scores 1 when the verdict agrees with gold, 0 when it does not, and 0.5 when the output has no
verdict (a coin's expected score, so unparseable outputs count as chance rather than vanish).
Prints mean(B) - mean(A) with a 95% normal interval of the per-item differences."""
import json
import math
import sys
from collections import defaultdict


def load(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        score = 0.5 if r["verdict"] is None else (1.0 if r["agrees"] else 0.0)
        out[r["pair_id"]] = (r["kind"], score)
    return out


a, b = load(sys.argv[1]), load(sys.argv[2])
keys = sorted(set(a) & set(b))
if len(keys) != len(a) or len(keys) != len(b):
    sys.exit(f"the files do not hold the same items: {len(a)}, {len(b)}, {len(keys)} shared")
by = defaultdict(list)
for k in keys:
    kind = a[k][0]
    by[kind].append(b[k][1] - a[k][1])
    by["overall"].append(b[k][1] - a[k][1])
print(f"{'dimension':<14} {'n':>4}  {'A':>6} {'B':>6}  B-A [95% paired interval]")
for kind in sorted(by, key=lambda k: (k == "overall", k)):
    d = by[kind]
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1)
    half = 1.96 * math.sqrt(var / n)
    ks = [k for k in keys if kind == "overall" or a[k][0] == kind]
    ma = sum(a[k][1] for k in ks) / n
    mb = sum(b[k][1] for k in ks) / n
    print(f"{kind:<14} {n:>4}  {ma:6.3f} {mb:6.3f}  {mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]")
