"""Where a blind judge's reasoning accuracy below 0.5 comes from: accuracy by feature of the
pair (how the chosen answer ends, which position it is in, the verdict given, unparsed
verdicts) over an exported `evaluate` judgements.jsonl.

    python3 notes/science/session14/blind_features.py DIR/judgements.jsonl [kind]
"""
import collections
import json
import sys

path = sys.argv[1]
kind = sys.argv[2] if len(sys.argv) > 2 else "reasoning"
rows = [json.loads(line) for line in open(path)]
rows = [r for r in rows if r["kind"] == kind]


def chosen(r):
    return r["answer_a"] if r["preferred"] == "A" else r["answer_b"]


def rejected(r):
    return r["answer_b"] if r["preferred"] == "A" else r["answer_a"]


groups = collections.defaultdict(list)
for r in rows:
    c, j = chosen(r), rejected(r)
    groups["chosen answer ends with " + c.rstrip(".").split()[-1]].append(r["agrees"])
    groups["chosen answer in position " + str(r["preferred"])].append(r["agrees"])
    groups["verdict " + str(r["verdict"])].append(r["agrees"])
    length = "longer" if len(c) > len(j) else "shorter" if len(c) < len(j) else "as long as"
    groups[f"chosen answer {length} the rejected one"].append(r["agrees"])
parsed = [r["agrees"] for r in rows if r["verdict"] is not None]
print(f"{path} ({kind}): n {len(rows)}, accuracy {sum(r['agrees'] for r in rows) / len(rows):.3f}, "
      f"unparsed {len(rows) - len(parsed)}, accuracy over parsed {sum(parsed) / max(1, len(parsed)):.3f}")
for key, values in sorted(groups.items()):
    if len(values) >= 15:
        print(f"  {key:45s} n {len(values):4d}  accuracy {sum(values) / len(values):.3f}")
