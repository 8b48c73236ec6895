import json, sys, math
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
    print(p.split('/')[0], f"overall {m:.3f}", " ".join(f"{k} {sum(v)/len(v):.3f}" for k,v in sorted(by.items())))
