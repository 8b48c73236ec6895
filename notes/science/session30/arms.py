#!/usr/bin/env python3
"""Session 30's comparisons, from the collected grids (science_collect.py's JSON files).

    arms.py RJ_DIR REF_DIR B456_DIR LEVER29_DIR

1. The two reasoning arms against the shipped file (REF_DIR's `main`, the same call, the same
   bench items), seeds 1-3: after seven minus after seven, and base minus base, paired over the
   items decided in both (95% bootstrap over items), per bench dimension; across seeds a t
   interval.
2. Six seeds of the shipped file and its random-verdict control: seeds 1-3 from session 29
   (LEVER29_DIR, one call), 4-6 from this session (B456_DIR, one call). Per seed each arm's gain
   (after seven minus base) and the main's gain minus the control's, on the items decided in
   all four evaluations: d = (main7 - main0) - (control7 - control0) per item, with a 95%
   bootstrap over items; across seeds t intervals.
"""
import importlib.util
import random
import sys

spec = importlib.util.spec_from_file_location("st", "scripts/science_table.py")
st = importlib.util.module_from_spec(spec)
spec.loader.exec_module(st)

rj, ref, b456, lever29 = sys.argv[1:5]


def fmt(t):
    return f"{t[0]:+.3f} [{t[1]:+.3f}, {t[2]:+.3f}]"


print("## 1. Reasoning arms minus the shipped file (seeds 1-3, same call, same items)\n")
for arm in ("reason_counts", "reason_final"):
    for node in ("eval_base", "evaluate@7"):
        diffs, kinds_all = [], {}
        for s in (1, 2, 3):
            a = st.load(ref, f"s{s}_main", node + ".judgements")
            b = st.load(rj, f"s{s}_{arm}", node + ".judgements")
            m, lo, hi, n = st.paired(a, b)
            kinds = st.paired_by_kind(a, b)
            for k, v in kinds.items():
                kinds_all.setdefault(k, []).append(v)
            diffs.append(m)
            print(f"seed {s} {node}: {arm} minus main {fmt((m, lo, hi))} (n {n}); "
                  + ", ".join(f"{k} {v:+.3f}" for k, v in sorted(kinds.items())))
        print(f"**{arm} minus main at {node}, across seeds: {fmt(st.across(diffs))}**; "
              + ", ".join(f"{k} {fmt(st.across(v))}" for k, v in sorted(kinds_all.items())))
        print()


def gain_items(d, label):
    base = st.correct_by_item(st.load(d, label, "eval_base.judgements"))
    last = st.correct_by_item(st.load(d, label, "evaluate@7.judgements"))
    return {k: int(last[k]) - int(base[k]) for k in set(base) & set(last)}


def boot(d, reps=4000, seed=0):
    rng = random.Random(seed)
    n = len(d)
    means = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps))
    return sum(d) / n, means[int(0.025 * reps)], means[int(0.975 * reps) - 1]


print("## 2. Six seeds: the shipped file (main) and its random-verdict control\n")
print("| seed | call | main gain | control gain | main minus control | items |")
print("| --- | --- | --- | --- | --- | --- |")
gm, gc, gd = [], [], []
for s, d, call in [(1, lever29, "session 29"), (2, lever29, "session 29"), (3, lever29, "session 29"),
                   (4, b456, "session 30"), (5, b456, "session 30"), (6, b456, "session 30")]:
    m, c = gain_items(d, f"s{s}_main"), gain_items(d, f"s{s}_control")
    common = sorted(set(m) & set(c))
    mg = boot([m[k] for k in sorted(m)])
    cg = boot([c[k] for k in sorted(c)])
    dd = boot([m[k] - c[k] for k in common])
    gm.append(mg[0]); gc.append(cg[0]); gd.append(dd[0])
    print(f"| {s} | {call} | {fmt(mg)} | {fmt(cg)} | {fmt(dd)} | {len(common)} |")
print()
print(f"- main gain across six seeds: {fmt(st.across(gm))}")
print(f"- control gain across six seeds: {fmt(st.across(gc))}")
print(f"- main minus control across six seeds: {fmt(st.across(gd))}")
print(f"- seeds 4-6 alone: main {fmt(st.across(gm[3:]))}, control {fmt(st.across(gc[3:]))}")
