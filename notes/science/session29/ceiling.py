#!/usr/bin/env python3
"""How far the overall gain can go when the reasoning pairs do not move.

For each seed of a collected arm: the base's accuracy per bench dimension (items it decided,
as science_table.py scores them), the last iteration's, and the ceiling gain: every general
and hallucination item the base decided right, reasoning items as the base had them, minus
the base. The bench is a third reasoning pairs, so a base that is already good on the other
two has little room left there.

    ceiling.py DIR LABEL       # e.g. /tmp/g29/lever_all main
"""
import importlib.util
import sys

spec = importlib.util.spec_from_file_location("st", "scripts/science_table.py")
st = importlib.util.module_from_spec(spec)
spec.loader.exec_module(st)

d, label = sys.argv[1:3]
for s in (1, 2, 3):
    lab = f"s{s}_{label}"
    k = st.last_iteration(d, lab)
    base = st.load(d, lab, "eval_base.judgements")
    last = st.load(d, lab, f"evaluate@{k}.judgements")
    kind = dict(zip(base["pair_id"], base["kind"]))
    b, l = st.correct_by_item(base), st.correct_by_item(last)
    common = sorted(set(b) & set(l))

    def acc(c, keys):
        return sum(c[x] for x in keys) / len(keys)

    by = {}
    for x in common:
        by.setdefault(kind[x], []).append(x)
    ceiling = sum((b[x] if kind[x] == "reasoning" else 1) for x in common) / len(common)
    print(f"seed {s} ({len(common)} items decided in both): base {acc(b, common):.3f}, "
          f"after {k} {acc(l, common):.3f}; "
          + "; ".join(f"{kk} {acc(b, v):.3f} -> {acc(l, v):.3f} (n {len(v)})" for kk, v in sorted(by.items()))
          + f"; ceiling gain with reasoning at the base {ceiling - acc(b, common):+.3f}"
          f" (achieved {acc(l, common) - acc(b, common):+.3f})")
