#!/usr/bin/env python3
"""Session 26: where the general pairs' remaining errors come from (CPU lab, session 25's frames).

    position.py EXP_DIR KEPT_JSONL...

EXP_DIR holds `collect.sh`'s exports (`eval_base_s<S>/judgements.jsonl`,
`evaluate_<K>_agree_s<S>/judgements.jsonl`); each KEPT_JSONL (or .jsonl.xz) is a `filter@K.kept` export
(`judgeflow export ... "filter@K[seed=S].kept" --format jsonl`). Prints, per seed and bench
dimension, the judge's A-share and its accuracy when the better answer is shown first (A) and
second (B), by iteration; the (true)/(false) marks it gives each answer on general pairs; and
the marks in the kept training judgements (what the fine-tuning teaches about Answer A's and
Answer B's first claim).
"""
import collections
import json
import lzma
import os
import re
import sys

MARKS = re.compile(r"Answer A: .*?\((true|false)\).*?Answer B: .*?\((true|false)\)", re.S)


def rows(path):
    with (lzma.open(path, "rt") if path.endswith(".xz") else open(path)) as f:
        return [json.loads(line) for line in f]


def bench(exp):
    for s in (1, 2, 3):
        names = ["eval_base"] + sorted(
            (n.rsplit("_s", 1)[0] for n in os.listdir(exp)
             if n.startswith("evaluate_") and "blind" not in n and n.endswith(f"_s{s}")),
            key=lambda n: int(n.split("_")[1]))
        print(f"== seed {s}: A-share, accuracy when the better answer is A / is B")
        for name in names:
            rs = rows(os.path.join(exp, f"{name}_s{s}", "judgements.jsonl"))
            cells = []
            for kind in ("general", "hallucination", "reasoning"):
                k = [r for r in rs if r["kind"] == kind]
                a_share = sum(r["verdict"] == "A" for r in k) / len(k)
                acc = {p: sum(r["agrees"] for r in k if r["preferred"] == p)
                       / max(1, sum(r["preferred"] == p for r in k)) for p in "AB"}
                cells.append(f"{kind[:5]} {a_share:.2f} {acc['A']:.2f}/{acc['B']:.2f}")
            print(f"  {name:18s} " + " | ".join(cells))
        for name in (names[0], names[-1]):
            c = collections.Counter()
            for r in rows(os.path.join(exp, f"{name}_s{s}", "judgements.jsonl")):
                if r["kind"] != "general":
                    continue
                m = MARKS.search(r["output"])
                c[f"better {r['preferred']}: A {m.group(1)}, B {m.group(2)}" if m else "no marks"] += 1
            print(f"  {name} general pairs' marks: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))


def kept(paths):
    for p in paths:
        c = collections.Counter()
        n = 0
        for r in rows(p):
            m = MARKS.search(r["response"])
            if not m:
                continue
            n += 1
            c[f"A first {m.group(1)}"] += 1
            c[f"B first {m.group(2)}"] += 1
            c[f"(A, B) = ({m.group(1)}, {m.group(2)})"] += 1
        verdicts = collections.Counter(re.search(r"Answer ([AB]) is better", r["response"]).group(1)
                                       for r in rows(p))
        print(f"== {p}: {n} kept judgements with marks; verdicts {dict(verdicts)}")
        for k, v in sorted(c.items()):
            print(f"  {k:24s} {v:5d} ({v / n:.2f})")


if __name__ == "__main__":
    bench(sys.argv[1])
    kept(sys.argv[2:])
