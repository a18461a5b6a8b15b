"""Unit-level sentiment prototype (issue 14, requirement 2), MiniLM only (e5 vectors come from the
Rust embedder: see benches/sentiment.rs, which ports the variant kept here).

SemEval-2014 laptops (evaluation only, read from ../shared at run time): for each aspect term with
polarity positive/negative, the opinion unit holding it (sentence, then contrast clauses) is scored;
accuracy against the term's polarity. Sentences are split in two halves by their line number in the
file: `dev` (even lines; anything tuned is tuned there) and `test` (odd lines; reported, never read
while tuning). Also UCI leave-one-domain-out and Amazon Fine Foods (verbatim = aggregate of units).

    ~/.cache/peers-venv/bin/python benches/peers/proto/unit_sentiment.py ../shared/data
"""
import json, re, sys, os, math
import numpy as np

D = sys.argv[1] if len(sys.argv) > 1 else '../shared/data'
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, '../../..')
rows = lambda p: [json.loads(l) for l in open(p) if l.strip()]

CONTRAST = r"\b(?:but|however|although|though|except|whereas|mais|cependant|pourtant|par contre|sauf que)\b"
def units(text):
    """(start, end) char spans: sentences, then contrast clauses."""
    out = []
    for m in re.finditer(r'[^.!?\n]+(?:[.!?]+|$)', text):
        s, e = m.start(), m.end()
        cuts = [s] + [c.start() for c in re.finditer(CONTRAST, text[s:e], re.I) if c.start() > 0 and text[s:s + c.start()].strip() and len(text[s:s + c.start()].split()) >= 2] + [e]
        cuts = [s] + [s + c for c in cuts[1:-1]] + [e]
        for a, b in zip(cuts, cuts[1:]):
            if text[a:b].strip():
                out.append((a, b))
    return out or [(0, len(text))]

LEX = {}
for line in open(os.path.join(ROOT, 'src/sentiment/lexicon.tsv'), encoding='utf-8'):
    if line.startswith('#') or not line.strip(): continue
    w, v = line.rstrip('\n').split('\t'); LEX[w] = float(v)
NEG = {'not', 'no', 'never', 'without', 'nothing', 'none', 'nor', 'cannot', 'pas', 'sans', 'jamais', 'aucun', 'aucune', 'rien', 'plus'}
TOK = re.compile(r"[a-zà-ÿ]+(?:n't)?|n't|[,;:!?()]", re.I)
def rule(text, flip_pos=-0.8, flip_neg=-0.4, scope=3, alpha=15.0):
    toks = [t.lower() for t in TOK.findall(text.replace('’', "'"))]
    tot = 0.0; left = 0; fr_ne = False
    for t in toks:
        if t in ',;:!?()': left = 0; fr_ne = False; continue
        if t in ('ne', 'n'): fr_ne = True; continue
        if t in NEG or t.endswith("n't") or (t in ('pas', 'jamais', 'rien', 'plus') and fr_ne):
            if t == 'plus' and not fr_ne: pass
            else:
                left = scope; fr_ne = False; continue
        v = LEX.get(t)
        if v is not None:
            if left > 0: v *= flip_pos if v > 0 else flip_neg
            tot += v
        if left > 0: left -= 1
    return tot / math.sqrt(tot * tot + alpha)

def vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    s = SentimentIntensityAnalyzer(); return lambda t: s.polarity_scores(t)['compound']

def main():
    from sentence_transformers import SentenceTransformer
    sys.path.insert(0, '/work/shared/tools/peers'); import peers
    m = SentenceTransformer(peers.default_model(), device='cpu')
    emb = lambda ts: m.encode(ts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    head = json.load(open(os.path.join(ROOT, 'models/sentiment/all-MiniLM-L6-v2.json')))
    W, B = np.array(head['weights']), head['bias']
    hs = lambda X: 2 / (1 + np.exp(-(X @ W + B))) - 1
    V = vader()
    # SemEval items
    items = []
    for ln, r in enumerate(rows(f'{D}/semeval14_laptops.jsonl')):
        us = units(r['text'])
        for a in r['aspect_terms']:
            if a['polarity'] not in ('positive', 'negative'): continue
            u = next((u for u in us if u[0] <= a['from'] < u[1]), us[0])
            items.append(dict(id=r['id'], split='dev' if ln % 2 == 0 else 'test', unit=r['text'][u[0]:u[1]].strip(), whole=r['text'], y=a['polarity'] == 'positive', n_units=len(us)))
    y = np.array([i['y'] for i in items]); dev = np.array([i['split'] == 'dev' for i in items])
    Xu = emb([i['unit'] for i in items]); Xw = emb([i['whole'] for i in items])
    h_u, h_w = hs(Xu), hs(Xw)
    r_u = np.array([rule(i['unit']) for i in items])
    v_u = np.array([V(i['unit']) for i in items]); v_w = np.array([V(i['whole']) for i in items])
    def acc(s, thr=0.0, mask=None):
        ok = (s > thr) == y if thr == 0.0 else (s >= thr) == y
        return round(float(ok[mask].mean() if mask is not None else ok.mean()), 4)
    def line(name, s, thr=0.0):
        print(json.dumps(dict(variant=name, all=acc(s, thr), dev=acc(s, thr, dev), test=acc(s, thr, ~dev))), flush=True)
    print(json.dumps(dict(items=len(items), dev=int(dev.sum()), multi_unit=sum(i['n_units'] > 1 for i in items))))
    line('VADER whole sentence', v_w, 0.05); line('VADER unit', v_u, 0.05)
    line('head whole sentence', h_w); line('head unit', h_u)
    line('rule unit', r_u)
    for wgt in (0.3, 0.5, 0.7, 1.0):
        line(f'head+{wgt}*rule unit', h_u + wgt * r_u)
    np.save('/tmp/a2/sem_X.npy', Xu); json.dump(dict(h=h_u.tolist(), r=r_u.tolist(), y=y.tolist(), dev=dev.tolist(), units=[i['unit'] for i in items]), open('/tmp/a2/sem.json', 'w'))

if __name__ == '__main__':
    main()
