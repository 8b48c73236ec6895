"""With-image minus blind (grey image) gap, before and after self-training, per item.

    python3 gap.py BASE BASE_BLIND AFTER AFTER_BLIND     (evaluate `judgements` exports, jsonl)

Scores as session12/paired.py does (1 verdict agrees with gold, 0 disagrees, 0.5 unparseable),
items matched by pair_id. Prints each judge's accuracy with a 95% normal interval and the gap
growth (AFTER - AFTER_BLIND) - (BASE - BASE_BLIND) with a 95% interval of its per-item values,
per dimension and overall."""
import json
import math
import sys
from collections import defaultdict


def load(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[r["pair_id"]] = (r["kind"], 0.5 if r["verdict"] is None else float(r["agrees"]))
    return out


def interval(xs):
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    h = 1.96 * sd / math.sqrt(n)
    return m, m - h, m + h


files = [load(p) for p in sys.argv[1:5]]
keys = sorted(set.intersection(*(set(f) for f in files)))
if any(len(f) != len(keys) for f in files):
    sys.exit("the files do not hold the same items")
names = ["base", "base blind", "after", "after blind"]
groups = defaultdict(list)
for k in keys:
    groups[files[0][k][0]].append(k)
    groups["overall"].append(k)
for kind in sorted(groups, key=lambda g: (g == "overall", g)):
    ks = groups[kind]
    accs = ", ".join(
        "{} {:.3f} [{:.3f}, {:.3f}]".format(n, *interval([f[k][1] for k in ks]))
        for n, f in zip(names, files)
    )
    growth = [(files[2][k][1] - files[3][k][1]) - (files[0][k][1] - files[1][k][1]) for k in ks]
    print(f"{kind:<14} n {len(ks)}: {accs}; gap growth {interval(growth)[0]:+.3f} "
          f"[{interval(growth)[1]:+.3f}, {interval(growth)[2]:+.3f}]")
