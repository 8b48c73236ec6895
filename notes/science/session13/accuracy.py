"""Accuracy of exported `evaluate` judgements, overall and per dimension, scored as
`session12/paired.py` scores them (1 agrees with gold, 0 does not, 0.5 no verdict).

    python3 accuracy.py DIR/judgements.jsonl [...]"""
import json, math, os, sys
def load(p):
    out={}
    for l in open(p):
        r=json.loads(l); out[r["pair_id"]]=(r["kind"], 0.5 if r["verdict"] is None else (1.0 if r["agrees"] else 0.0))
    return out
for p in sys.argv[1:]:
    d=load(p); xs=[v for _,v in d.values()]
    m=sum(xs)/len(xs)
    by={}
    for k,v in d.values(): by.setdefault(k,[]).append(v)
    print(os.path.basename(os.path.dirname(os.path.abspath(p))), f"overall {m:.3f}", " ".join(f"{k} {sum(v)/len(v):.3f}" for k,v in sorted(by.items())))
