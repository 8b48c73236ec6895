import json,sys,os,collections
# A-share and accuracy by which position the better answer is in, per kind: DIR LABEL...
d=sys.argv[1]
for lab in sys.argv[2:]:
    print("==",lab)
    p=os.path.join(d,lab)
    ks=["eval_base"]+[f"evaluate@{i}" for i in range(1,8)]
    for k in ks:
        f=os.path.join(p,k+".judgements.json")
        if not os.path.exists(f): continue
        j=json.load(open(f))
        out=[]
        for kind in ("general","hallucination","reasoning"):
            c=collections.Counter()
            for i in range(len(j["kind"])):
                if j["kind"][i]!=kind or j["verdict"][i] not in ("A","B"): continue
                better=j["preferred"][i]
                c[(better, j["verdict"][i]==better)]+=1
                c["A"]+= j["verdict"][i]=="A"; c["n"]+=1
            accA=c[("A",True)]/max(1,c[("A",True)]+c[("A",False)]); accB=c[("B",True)]/max(1,c[("B",True)]+c[("B",False)])
            out.append(f"{kind[:5]} {c['A']/max(1,c['n']):.2f} {accA:.2f}/{accB:.2f}")
        print(f"  {k:12s}", " | ".join(out))
