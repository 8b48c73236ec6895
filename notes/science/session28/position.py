import json,sys,collections
# (session 28) A-share and accuracy with the better answer first / second, per kind, for evaluate judgements.jsonl files:
#   python3 notes/science/session28/position.py DIR/judgements.jsonl ...
# A-share and accuracy by the better answer's position, per kind: jsonl files
for f in sys.argv[1:]:
    c=collections.defaultdict(collections.Counter)
    for l in open(f):
        j=json.loads(l)
        if j.get('verdict') not in ('A','B'): continue
        k=j['kind'][:5]; b=j['preferred']
        c[k][(b, j['verdict']==b)]+=1; c[k]['A']+=j['verdict']=='A'; c[k]['n']+=1
    out=[]
    for k in sorted(c):
        x=c[k]; aA=x[('A',True)]/max(1,x[('A',True)]+x[('A',False)]); aB=x[('B',True)]/max(1,x[('B',True)]+x[('B',False)])
        out.append(f"{k} A {x['A']/x['n']:.2f} {aA:.2f}/{aB:.2f}")
    print(f.split('/')[-2][:28].ljust(28)," | ".join(out))
