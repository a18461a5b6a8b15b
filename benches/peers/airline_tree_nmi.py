"""NMI of an aspect tree against the airline complaint reasons, from `verbatim themes assignments`.

Usage: python airline_tree_nmi.py ../shared/data/airline_tweets.jsonl ASSIGNMENTS.jsonl...

The tweets kept are the issue-14 benchmark's: negative, a reason other than "Can't Tell", reason
confidence >= 0.7 (3,489). A tweet's theme is the node of its most negative unit ("neg": the
complaint the annotator labelled) or of most of its units ("most"), at the child ("theme") and
parent level; a tweet with no placed unit is "other". A third rule, "aspect": the node of its most
negative unit that names an aspect (a parent other than General), General only when none does —
the annotator labelled the aspect complained about, and a tweet belongs to every theme one of its
units belongs to ("@united worst airline ever. Delayed 3 hours": General and Delays; the reason is
Late Flight). "general" is then the share of tweets whose only parent is General.
"""
import json,sys,collections
from sklearn.metrics import normalized_mutual_info_score as nmi
rows=[json.loads(l) for l in open(sys.argv[1])]
keep={r['id']:r['reason'] for r in rows if r['sentiment']=='negative' and r['reason'] and r['reason']!="Can't Tell" and (r['reason_confidence'] or 0)>=0.7}
for f in sys.argv[2:]:
    units=collections.defaultdict(list)
    for l in open(f):
        u=json.loads(l)
        if u['id'] in keep: units[u['id']].append(u)
    # General: the parent whose units name no aspect, found by its label in the assignments'
    # sibling themes file when given, else the parent holding most tweets whose units all share it.
    general=None
    parents=collections.Counter()
    for us in units.values():
        ps={u['parent'] for u in us if u['parent']}
        if len(ps)==1: parents[next(iter(ps))]+=1
    tf=f.replace('_assign.jsonl','_themes.txt')
    try:
        for l in open(tf):
            c=l.split()
            if len(c)>1 and c[0].startswith('P') and c[1]=='General': general=c[0]
    except OSError:
        pass
    for lvl in ['theme','parent']:
        for rule in ['neg','most','aspect']:
            y=[];p=[]
            for i,r in keep.items():
                us=units.get(i,[])
                if rule=='neg':
                    us2=sorted(us,key=lambda u:u['score'])
                    lab=next((u[lvl] for u in us2 if u[lvl]),'other')
                elif rule=='aspect':
                    us2=sorted(us,key=lambda u:u['score'])
                    lab=next((u[lvl] for u in us2 if u[lvl] and u['parent']!=general),None)
                    lab=lab or next((u[lvl] for u in us2 if u[lvl]),'other')
                else:
                    c=collections.Counter(u[lvl] for u in us if u[lvl])
                    lab=c.most_common(1)[0][0] if c else 'other'
                y.append(r);p.append(lab)
            oth=sum(1 for x in p if x=='other')/len(p)
            extra=''
            if rule=='aspect' and lvl=='parent':
                extra=' general=%s %.1f%%'%(general,100*sum(1 for x in p if x==general)/len(p))
            print(f, lvl, rule, len(y), 'nmi=%.3f'%nmi(y,p), 'k=%d'%len(set(p)), 'other=%.1f%%'%(100*oth)+extra)
