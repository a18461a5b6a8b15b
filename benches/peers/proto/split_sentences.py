"""Split each review into sentences (regex on . ! ? and <br />), fragments under 3 words glued to the
previous sentence.  Writes DIR/amazon_sents.jsonl with doc index `doc`."""
import json, re, sys
src, dst = sys.argv[1], sys.argv[2]
SPLIT = re.compile(r'(?<=[.!?])\s+|<br\s*/?>|\n+')
n = 0
with open(src) as f, open(dst, 'w') as o:
    for d, l in enumerate(f):
        r = json.loads(l)
        parts = [p.strip() for p in SPLIT.split(r['text']) if p and p.strip()]
        out = []
        for p in parts:
            if out and len(p.split()) < 3: out[-1] += ' ' + p
            else: out.append(p)
        for p in out or [r['text']]:
            o.write(json.dumps(dict(doc=d, text=p)) + '\n'); n += 1
print(n)
