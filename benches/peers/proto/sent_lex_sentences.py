"""Amazon: sentence-mean embedding + simple-lexicon feature (LR trained on UCI only), and UCI
10-fold/LODO for the same feature set (UCI rows are single sentences, so 'sentence mean' = row)."""
import json, re, os, sys
import numpy as np, vaderSentiment
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
D = sys.argv[1] if len(sys.argv) > 1 else '/tmp/proto'
rows = lambda p: [json.loads(l) for l in open(p) if l.strip()]
LEX = {}
for line in open(os.path.join(os.path.dirname(vaderSentiment.__file__), 'vader_lexicon.txt'), encoding='utf-8'):
    p = line.rstrip('\n').split('\t')
    if len(p) >= 2: LEX[p[0]] = float(p[1])
NEG = {'not', 'no', 'never', 'none', 'nobody', 'nothing', 'neither', 'nor', 'cannot', 'without', 'hardly'}
def simple_lex(t):
    toks = re.findall(r"[a-z']+|[!?]", t.lower()); tot = 0.0
    for i, w in enumerate(toks):
        v = LEX.get(w)
        if v is None: continue
        if any(p in NEG or p.endswith("n't") for p in toks[max(0, i - 3):i]): v *= -0.74
        tot += v
    return tot / np.sqrt(tot * tot + 15)
uci = rows(f'{D}/uci.jsonl'); Xu = np.load(f'{D}/uci.npy').astype(np.float64)
amz = rows(f'{D}/amazon.jsonl'); sr = rows(f'{D}/amazon_sents.jsonl'); Xs = np.load(f'{D}/amazon_sents.npy').astype(np.float64)
doc = np.array([r['doc'] for r in sr]); nd = len(amz)
yu = np.array([r['label'] == 'positive' for r in uci], int); ya = np.array([r['label'] == 'great' for r in amz], int)
E = np.zeros((nd, Xs.shape[1])); np.add.at(E, doc, Xs); E /= np.linalg.norm(E, axis=1, keepdims=True)
lu = np.array([simple_lex(r['text']) for r in uci]); la = np.array([simple_lex(r['text']) for r in amz])
ls = np.array([simple_lex(r['text']) for r in sr]); la_mean = np.bincount(doc, ls, nd) / np.bincount(doc, minlength=nd)
for C in (0.3, 1.0, 3.0):
    for lexname, fu, fa in (('none', None, None), ('doc_lex', lu, la), ('sent_mean_lex', lu, la_mean)):
        F = lambda X, l: X if l is None else np.hstack([X, l[:, None]])
        m = LogisticRegression(C=C, max_iter=3000).fit(F(Xu, fu), yu)
        pa = m.predict_proba(F(E, fa))[:, 1]
        oof = np.zeros(len(yu))
        for tr, te in StratifiedKFold(10, shuffle=True, random_state=0).split(Xu, yu):
            oof[te] = LogisticRegression(C=C, max_iter=3000).fit(F(Xu, fu)[tr], yu[tr]).predict_proba(F(Xu, fu)[te])[:, 1]
        r = dict(C=C, lex=lexname, amazon_sentmean=round(float(np.mean((pa >= .5) == ya)), 4), uci_10fold=round(float(np.mean((oof >= .5) == yu)), 4))
        for mg in (0.1, 0.2):
            k = np.abs(pa - .5) >= mg
            r[f'neutral{mg}'] = dict(amz_share=round(float(1 - k.mean()), 3), amz_acc_decided=round(float(np.mean((pa[k] >= .5) == ya[k])), 4))
        print(json.dumps(r), flush=True)
