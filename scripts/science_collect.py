#!/usr/bin/env python3
"""Collects the small frames of one finished self_train variant from the judgeflow cache.

For each node of interest, `judgeflow show` names the cached parquet file; this reads it with
pyarrow, drops image columns (for the judge's judgements keeps a summary, and for the bench's
the per-item verdicts; both with a few outputs of each kind, the judge's words), and writes one
JSON file per frame under OUT/LABEL/. science_table.py reads them.

    science_collect.py --bin .bin/judgeflow --pipeline P.toml --label s1_main --out DIR \
        [--iterations 5] [--set k=v ...]
"""

import argparse
import json
import os
import re
import subprocess
import sys

import pyarrow.parquet as pq


def nodes(iterations):
    """(node, port, how): how = "frame" keeps every row (no binary columns), "judge" summarises."""
    base = [("perception", "perception", "frame"),
            ("eval_base", "metrics", "frame"), ("eval_base", "judgements", "items"),
            ("eval_base_blind", "metrics", "frame"), ("eval_base_blind", "judgements", "items")]
    per_iteration = [("evaluate", "metrics", "frame"), ("evaluate", "judgements", "items"),
                     ("evaluate_blind", "metrics", "frame"),
                     ("evaluate_blind", "judgements", "items"),
                     ("judge", "judgements", "judge"), ("filter", "stats", "frame"),
                     ("vote", "pairs", "pairs"), ("corrupt", "pairs", "pairs"),
                     ("train", "loss", "frame")]
    return base + [(f"{n}@{k}", port, how)
                   for k in range(1, iterations + 1) for (n, port, how) in per_iteration]


def parquet_path(args, node, port):
    cmd = [args.bin, "show", args.pipeline, node, "--port", port] + sum(
        (["--set", s] for s in args.set), [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return None
    m = re.search(r": (\S+\.parquet)", res.stdout)
    return m.group(1) if m else None


def table(path):
    t = pq.read_table(path)
    keep = [f.name for f in t.schema if not str(f.type).startswith(("binary", "large_binary"))]
    return t.select(keep).to_pydict()


def judge_summary(cols):
    n = len(cols["pair_id"])
    parsed = [v is not None for v in cols["verdict"]]
    copies = 0
    for out, a, b in zip(cols["output"], cols["answer_a"], cols["answer_b"]):
        reasoning = out.split("Overall Judgment")[0]
        copies += (a.strip() and a.strip() in reasoning) or (b.strip() and b.strip() in reasoning)
    by_kind = {}
    for kind, agrees, ok in zip(cols["kind"], cols["agrees"], parsed):
        d = by_kind.setdefault(kind, [0, 0])
        if ok:
            d[0] += bool(agrees)
            d[1] += 1
    verdicts = [v for v in cols["verdict"] if v is not None]
    return {
        "judgements": n,
        "parsed": sum(parsed),
        "agree": sum(1 for a, ok in zip(cols["agrees"], parsed) if ok and a),
        "a_share": (sum(v == "A" for v in verdicts) / len(verdicts)) if verdicts else None,
        "copies": copies,
        "by_kind": by_kind,
        "examples": examples(cols, 6),
    }


def examples(cols, per_kind):
    """The first `per_kind` judgements of each kind with their text: the GPU's cache stays on
    the machine, and without the judge's words its verdicts cannot be read (session 30)."""
    out, seen = [], {}
    rows = zip(cols["kind"], cols["question"], cols["answer_a"], cols["answer_b"],
               cols["preferred"], cols["verdict"], cols["output"])
    for kind, q, a, b, p, v, o in rows:
        if seen.get(kind, 0) < per_kind:
            seen[kind] = seen.get(kind, 0) + 1
            out.append({"kind": kind, "question": q, "a": a, "b": b, "preferred": p,
                        "verdict": v, "output": o})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--pipeline", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--iterations", type=int, default=5,
                    help="self-training iterations to collect (self_train.toml runs 5)")
    args = ap.parse_args()
    where = os.path.join(args.out, args.label)
    os.makedirs(where, exist_ok=True)
    missing = []
    for node, port, how in nodes(args.iterations):
        path = parquet_path(args, node, port)
        if path is None:
            missing.append(f"{node}.{port}")
            continue
        cols = table(path)
        if how == "judge":
            data = judge_summary(cols)
        elif how == "items":
            data = {k: cols[k] for k in ("pair_id", "kind", "order", "preferred", "verdict", "agrees")}
            data["examples"] = examples(cols, 10)
        elif how == "pairs":
            data = {k: cols[k] for k in ("pair_id", "kind", "label_correct")}
        else:
            data = cols
        with open(os.path.join(where, f"{node}.{port}.json"), "w") as f:
            json.dump(data, f)
    print(f"{args.label}: collected; missing: {', '.join(missing) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
