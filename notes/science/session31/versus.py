"""Main's gain minus the control's gain after K, per seed, on the same items.

    python3 versus.py MAIN_EXP CONTROL_EXP K "SEEDS"     (cpu_collect.sh's export folders)

d = (main_K - main_base) - (control_K - control_base) per item (1 agrees, 0 not, 0.5
unparseable), a 95% normal interval over the items; across seeds a t interval."""
import json
import math
import statistics
import sys

main, control, k, seeds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()


def load(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[r["pair_id"]] = 0.5 if r["verdict"] is None else float(r["agrees"])
    return out


means = []
for s in seeds:
    m0, mk = load(f"{main}/base_s{s}/judgements.jsonl"), load(f"{main}/it{k}_s{s}/judgements.jsonl")
    c0, ck = load(f"{control}/base_s{s}/judgements.jsonl"), load(f"{control}/it{k}_s{s}/judgements.jsonl")
    keys = sorted(set(m0) & set(mk) & set(c0) & set(ck))
    d = [(mk[x] - m0[x]) - (ck[x] - c0[x]) for x in keys]
    m = sum(d) / len(d)
    h = 1.96 * statistics.stdev(d) / math.sqrt(len(d))
    means.append(m)
    print(f"seed {s}: main minus control after {k}: {m:+.3f} [{m - h:+.3f}, {m + h:+.3f}] (n {len(d)})")
m = sum(means) / len(means)
h = {2: 12.706, 3: 4.303}.get(len(means), 2.0) * statistics.stdev(means) / math.sqrt(len(means))
print(f"across seeds: {m:+.3f} [{m - h:+.3f}, {m + h:+.3f}]")
