import json,re,sys,collections
# Share of judgements whose restated claims appear in the answer they restate.
ANS=re.compile(r"Answer A: (.*)\nAnswer B: (.*)\n")
RES=re.compile(r"Answer A: (.*?)\. Answer B: (.*?)\. Overall", re.S)
def claims(seg):
    return [re.sub(r"\s*\((true|false)\)\s*$","",c).strip().lower() for c in re.split(r"\), ", seg+")") if c.strip()]
for path in sys.argv[1:]:
    c=collections.Counter()
    for l in open(path):
        r=json.loads(l); m=ANS.search(r['prompt']); n=RES.search(r['response'])
        if not m or not n: c['unparsed']+=1; continue
        ok=[]
        for ans,seg in ((m.group(1),n.group(1)),(m.group(2),n.group(2))):
            cl=[x.rstrip(')').replace(' (true','').replace(' (false','') for x in claims(seg)]
            ok.append(all(x in ans.lower() for x in cl))
        c[('A faithful',ok[0])]+=1; c[('B faithful',ok[1])]+=1; c[('both',ok[0] and ok[1])]+=1; c['n']+=1
    print(path, dict(c))
