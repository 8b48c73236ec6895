import json,sys,collections
# per pair: per order list of agrees (None if unparsed)
def load(p):
    d=collections.defaultdict(lambda: collections.defaultdict(list))
    for l in open(p):
        r=json.loads(l)
        a = r['agrees'] if r.get('verdict') else None
        d[r['pair_id']][r['order']].append(a)
    return d
for arm in ['main','ctrl']:
  for s in [1,2,3]:
    d=load(f'/tmp/lab15/exp/j1_{arm}_s{s}/judgements.jsonl')
    out=[]
    for th in [0.0,0.5,0.75,1.0]:
        n=0
        for pid,orders in d.items():
            ok=True
            for o,v in orders.items():
                parsed=[x for x in v if x is not None]
                agree=sum(1 for x in parsed if x)
                if agree==0 or agree < th*len(v): ok=False
            if ok and len(orders)==2: n+=1
        out.append(f"{th}:{n}")
    print(arm,s,len(d),' '.join(out))
