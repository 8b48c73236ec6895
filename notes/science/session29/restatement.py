#!/usr/bin/env python3
"""How faithfully the judge restates each answer on the bench, per dimension, and how often it
is right when it does (the CPU lab's evaluate exports, which keep the judge's output).

A restatement is faithful when every claim before a (true)/(false) mark is found in the answer
it restates (lower case), as session 27's faithful.py checks the loop's kept judgements.

    restatement.py judgements.jsonl...
"""
import collections
import json
import re
import sys

RES = re.compile(r"Answer A: (.*?)\. Answer B: (.*?)\. Overall", re.S)


def claims(seg):
    out = []
    for c in re.split(r"(?<=\)), ", seg):
        c = re.sub(r"\s*\((true|false)\)\s*$", "", c.strip()).strip().lower()
        if c:
            out.append(c)
    return out


for path in sys.argv[1:]:
    by = collections.defaultdict(collections.Counter)
    for line in open(path):
        r = json.loads(line)
        k = r["kind"]
        n = RES.search(r["output"] or "")
        if not n or r["verdict"] is None:
            by[k]["unparsed"] += 1
            continue
        ok = all(all(c in ans.lower() for c in claims(seg))
                 for ans, seg in ((r["answer_a"], n.group(1)), (r["answer_b"], n.group(2))))
        by[k]["n"] += 1
        by[k]["faithful"] += ok
        by[k]["right_faithful" if ok else "right_unfaithful"] += bool(r["agrees"])
    for k in sorted(by):
        c = by[k]
        f, n = c["faithful"], c["n"]
        rf = c["right_faithful"] / f if f else float("nan")
        ru = c["right_unfaithful"] / (n - f) if n > f else float("nan")
        print(f"{path.split('/')[-2]:28s} {k:13s} parsed {n:4d}  faithful {f / n:.2f}  "
              f"right when faithful {rf:.2f}  when not {ru:.2f}  unparsed {c['unparsed']}")
