"""Bench reasoning items by question form (counting: "How many ..."; comparison: "more"/"fewer"),
with the image and blind: score per item 1 right, 0 wrong, 0.5 unparseable.

    python3 reasoning_by_question.py IMAGE.judgements.jsonl BLIND.judgements.jsonl"""
import json
import sys
from collections import defaultdict


def form(q):
    q = q.lower()
    if q.startswith("how many"):
        return "counting"
    if "more" in q or "fewer" in q:
        return "comparison"
    return "other"


def load(path):
    return {r["pair_id"]: r for r in map(json.loads, open(path))}


image, blind = load(sys.argv[1]), load(sys.argv[2])
score = lambda r: 0.5 if r["verdict"] is None else float(r["agrees"])
by = defaultdict(lambda: ([], []))
for k, r in image.items():
    if r["kind"] == "reasoning":
        by[form(r["question"])][0].append(score(r))
        by[form(r["question"])][1].append(score(blind[k]))
for f, (a, b) in sorted(by.items()):
    print(f"{f:11s} n {len(a):3d}: image {sum(a)/len(a):.3f}, blind {sum(b)/len(b):.3f}")
