#!/usr/bin/env python3
"""Per-seed paired differences between two collected grids' arms, on the same bench items.

    versus.py DIR_A LABEL_A DIR_B LABEL_B [NODE]     # B minus A, per seed 1-3, NODE default the last evaluate

For each seed S: (B's NODE) minus (A's NODE) over the items both decided, with a 95% bootstrap
interval over items (science_table.paired), per bench dimension too; then the mean over seeds
with a t interval; and the exact per-seed and mean gains (last minus base) of each arm.
"""
import importlib.util
import sys

spec = importlib.util.spec_from_file_location("st", "scripts/science_table.py")
st = importlib.util.module_from_spec(spec)
spec.loader.exec_module(st)

da, la, db, lb = sys.argv[1:5]
node = sys.argv[5] if len(sys.argv) > 5 else None
diffs, gains = [], {"A " + la: [], "B " + lb: []}
for s in (1, 2, 3):
    A, B = f"s{s}_{la}", f"s{s}_{lb}"
    k = min(st.last_iteration(da, A), st.last_iteration(db, B))
    n = node or f"evaluate@{k}"
    ia, ib = st.load(da, A, n + ".judgements"), st.load(db, B, n + ".judgements")
    m, lo, hi, cnt = st.paired(ia, ib)
    kinds = st.paired_by_kind(ia, ib)
    diffs.append(m)
    print(f"seed {s} {n}: B {lb} minus A {la} {m:+.4f} [{lo:+.4f}, {hi:+.4f}] (n {cnt}); "
          + ", ".join(f"{kk} {v:+.3f}" for kk, v in sorted(kinds.items())))
    for d, lab, full in ((da, "A " + la, A), (db, "B " + lb, B)):
        g = st.paired(st.load(d, full, "eval_base.judgements"), st.load(d, full, n + ".judgements"))
        gains[lab].append(g[0])
        print(f"   {lab} gain {g[0]:+.4f} [{g[1]:+.4f}, {g[2]:+.4f}]")
m, lo, hi = st.across(diffs)
print(f"B {lb} minus A {la} across seeds: {m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
for lab, g in gains.items():
    m, lo, hi = st.across(g)
    print(f"{lab} gain across seeds: {m:+.5f} [{lo:+.4f}, {hi:+.4f}] (per seed "
          + ", ".join(f"{x:+.4f}" for x in g) + ")")
