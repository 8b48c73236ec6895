#!/usr/bin/env python3
"""Tables of a science grid collected by device_science.sh (science_collect.py's JSON files).

Every accuracy comes with its 95% Wilson interval; a per-seed gain (last iteration minus base,
on the bench items decided in both) with a paired bootstrap interval over items; gains across
seeds with a t interval over seeds. Text baselines (shorter/longer wins) and the blind judge sit
beside every sighted score. Prints markdown.

    science_table.py DIR        # DIR holds one folder per s<SEED>_<VARIANT>

A variant's last iteration is the highest `evaluate@K` that every one of its seeds has.
"""

import json
import math
import re
import os
import random
import statistics
import sys

VARIANTS = ["main", "control", "control_rr", "nofilter", "oneorder", "oracle", "anywhere", "reason", "reason_judged", "reason_counts", "reason_final", "noreason"]
# Two-sided 97.5% quantiles of Student's t by degrees of freedom.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def load(d, label, name):
    p = os.path.join(d, label, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def last_iteration(d, label):
    """The highest K with `evaluate@K.metrics` collected for LABEL (0 when none)."""
    k = 0
    while load(d, label, f"evaluate@{k + 1}.metrics"):
        k += 1
    return k


def metric(m, dim="overall"):
    i = m["dimension"].index(dim)
    return {k: m[k][i] for k in m}


def fmt(r):
    return f"{r['accuracy']:.3f} [{r['accuracy_lo']:.3f}, {r['accuracy_hi']:.3f}] (n {r['n']}, unparseable {r['unparseable']})"


def correct_by_item(items):
    out = {}
    for pid, verdict, agrees in zip(items["pair_id"], items["verdict"], items["agrees"]):
        if verdict is not None:
            out.setdefault(pid, []).append(bool(agrees))
    # samples = 1 in self_train: one judgement per item; majority otherwise (ties dropped).
    res = {}
    for pid, v in out.items():
        s = sum(v)
        if 2 * s != len(v):
            res[pid] = 2 * s > len(v)
    return res


def paired(items0, items1, seed=0, reps=4000, kind=None):
    """Mean paired difference (items1 - items0) over the items decided in both, with a 95%
    bootstrap interval over items; `kind` keeps one bench dimension."""
    a, b = correct_by_item(items0), correct_by_item(items1)
    common = sorted(set(a) & set(b))
    if kind is not None:
        kinds = dict(zip(items0["pair_id"], items0["kind"]))
        common = [k for k in common if kinds[k] == kind]
    if not common:
        return None
    d = [int(b[k]) - int(a[k]) for k in common]
    rng = random.Random(seed)
    n = len(d)
    means = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps))
    return sum(d) / n, means[int(0.025 * reps)], means[int(0.975 * reps) - 1], n


def paired_by_kind(items0, items1):
    """Per bench dimension: the mean paired difference over the items decided in both."""
    a, b = correct_by_item(items0), correct_by_item(items1)
    kind = dict(zip(items0["pair_id"], items0["kind"]))
    out = {}
    for k in sorted(set(a) & set(b)):
        out.setdefault(kind[k], []).append(int(b[k]) - int(a[k]))
    return {k: sum(v) / len(v) for k, v in out.items()}


def across(values):
    n = len(values)
    if n < 2:
        return None
    m = statistics.mean(values)
    h = T975.get(n - 1, 2.0) * statistics.stdev(values) / math.sqrt(n)
    return m, m - h, m + h


def main():
    d = sys.argv[1]
    # One folder per s<SEED>_<VARIANT>; others (device_science.sh's `traces`) are not runs.
    labels = sorted(x for x in os.listdir(d) if os.path.isdir(os.path.join(d, x))
                    and re.fullmatch(r"s\d+_\w+", x))
    seeds = sorted({int(x.split("_")[0][1:]) for x in labels})
    print(f"# Science grid: seeds {seeds}\n")
    print("## Perception of the base model (greedy, held-out closed questions)\n")
    print("| seed | form | accuracy [95%] | prior | n | passes |\n| --- | --- | --- | --- | --- | --- |")
    for s in seeds:
        p = load(d, f"s{s}_main", "perception.perception")
        if p:
            for i in range(len(p["task"])):
                print(f"| {s} | {p['task'][i]}/{p['form'][i]} | {p['accuracy'][i]:.3f} "
                      f"[{p['accuracy_lo'][i]:.3f}, {p['accuracy_hi'][i]:.3f}] | {p['prior'][i]:.3f} "
                      f"| {p['n'][i]} | {p['passes'][i]} |")
    print()
    for v in VARIANTS:
        done = {s: last_iteration(d, f"s{s}_{v}") for s in seeds}
        have = [s for s in seeds if done[s] > 0]
        if not have:
            continue
        last = min(done[s] for s in have)
        print(f"## Variant `{v}` ({len(have)} seeds, {last} iterations)\n")
        print("| seed | node | overall | general | hallucination | reasoning | blind overall | shorter / longer wins |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        gains, gaps, by_kind, means = [], [], {}, {}
        for s in have:
            lab = f"s{s}_{v}"
            for k, (node, blind) in enumerate([("eval_base", "eval_base_blind")] + [
                    (f"evaluate@{i}", f"evaluate_blind@{i}") for i in range(1, last + 1)]):
                m = load(d, lab, node + ".metrics")
                b = load(d, lab, blind + ".metrics")
                if not m:
                    continue
                o = metric(m)
                cells = [fmt(metric(m, dim)) for dim in ("general", "hallucination", "reasoning")]
                bo = fmt(metric(b)) if b else "—"
                print(f"| {s} | {node} | {fmt(o)} | " + " | ".join(cells)
                      + f" | {bo} | {o['shorter_wins']:.3f} / {o['longer_wins']:.3f} |")
            base_items = load(d, lab, "eval_base.judgements")
            last_items = load(d, lab, f"evaluate@{last}.judgements")
            g = paired(base_items, last_items, seed=s) if base_items and last_items else None
            if base_items:
                for i in range(0, last + 1):
                    it = base_items if i == 0 else load(d, lab, f"evaluate@{i}.judgements")
                    if it:
                        c = correct_by_item(it)
                        means.setdefault(i, []).append(sum(c.values()) / max(len(c), 1))
            if base_items and last_items:
                for kind, x in paired_by_kind(base_items, last_items).items():
                    by_kind.setdefault(kind, []).append(x)
            if v != "main" and last_items:
                main_items = load(d, f"s{s}_main", f"evaluate@{last}.judgements")
                if main_items:
                    vm = paired(main_items, last_items, seed=s)
                    if vm:
                        by_kind.setdefault(f"{v} minus main", []).append(vm[0])
                        cells = []
                        for dim in ("general", "hallucination", "reasoning"):
                            vd = paired(main_items, last_items, seed=s, kind=dim)
                            if vd:
                                by_kind.setdefault(f"{v} minus main, {dim}", []).append(vd[0])
                                cells.append(f"{vd[0]:+.3f} [{vd[1]:+.3f}, {vd[2]:+.3f}] (n {vd[3]})")
                            else:
                                cells.append("")
                        print(f"| {s} | {v} minus main (paired, {vm[3]} items) | {vm[0]:+.3f} [{vm[1]:+.3f}, {vm[2]:+.3f}] | "
                              + " | ".join(cells) + " | | |")
            if g:
                gains.append(g[0])
                print(f"| {s} | gain (last − base, paired, {g[3]} items) | {g[0]:+.3f} [{g[1]:+.3f}, {g[2]:+.3f}] | | | | | |")
            bb = load(d, lab, "eval_base_blind.metrics")
            lb = load(d, lab, f"evaluate_blind@{last}.metrics")
            bm = load(d, lab, "eval_base.metrics")
            lm = load(d, lab, f"evaluate@{last}.metrics")
            if bb and lb and bm and lm:
                gaps.append((metric(lm)["accuracy"] - metric(lb)["accuracy"])
                            - (metric(bm)["accuracy"] - metric(bb)["accuracy"]))
        a = across(gains)
        if a:
            print(f"\nGain across seeds: {a[0]:+.3f}, 95% t interval [{a[1]:+.3f}, {a[2]:+.3f}] "
                  f"(per seed: {', '.join(f'{x:+.3f}' for x in gains)})")
        a = across(gaps)
        if a:
            print(f"Growth of the sighted − blind gap: {a[0]:+.3f} [{a[1]:+.3f}, {a[2]:+.3f}]")
        for kind, xs in sorted(by_kind.items()):
            a = across(xs)
            if a:
                print(f"{kind}: {a[0]:+.3f} [{a[1]:+.3f}, {a[2]:+.3f}] (per seed: "
                      f"{', '.join(f'{x:+.3f}' for x in xs)})")
        if means:
            print("Mean over seeds by iteration (0 = base, decided items): "
                  + " -> ".join(f"{statistics.mean(means[i]):.3f}" for i in sorted(means)))
        print("\n| seed | iteration | judge agrees (parsed) | unparseable | A-share | reasoning copies an answer | kept | majority label precision |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for s in have:
            lab = f"s{s}_{v}"
            for i in range(1, last + 1):
                j = load(d, lab, f"judge@{i}.judgements")
                f = load(d, lab, f"filter@{i}.stats")
                vp = load(d, lab, f"vote@{i}.pairs")
                if not j:
                    continue
                kept = "—"
                if f:
                    t = f["source"].index("total")
                    kept = f"{f['kept'][t]} / {f['judgements'][t]}"
                prec = "—"
                if vp:
                    lc = [x for x in vp["label_correct"] if x is not None]
                    if lc:
                        prec = f"{sum(lc) / len(lc):.3f} ({len(lc)})"
                print(f"| {s} | {i} | {j['agree'] / max(j['parsed'], 1):.3f} | "
                      f"{1 - j['parsed'] / j['judgements']:.3f} | {j['a_share'] or 0:.3f} | "
                      f"{j['copies'] / j['judgements']:.3f} | {kept} | {prec} |")
        print()


if __name__ == "__main__":
    main()
