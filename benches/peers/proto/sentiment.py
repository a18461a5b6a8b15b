#!/usr/bin/env python3
"""Goal 2 prototype: sentiment = logistic regression on MiniLM embeddings, trained on UCI only.

Run single-threaded:
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 10 python sentiment.py --dir /tmp/proto
Needs DIR/uci.jsonl + uci.npy, DIR/amazon.jsonl + amazon.npy (made with `verbatim embed`).
"""
import argparse, json, time
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

def rows(p):
    with open(p, encoding='utf-8') as f:
        return [json.loads(l) for l in f if l.strip()]

ap = argparse.ArgumentParser(); ap.add_argument('--dir', default='/tmp/proto')
a = ap.parse_args()
uci = rows(f'{a.dir}/uci.jsonl'); Xu = np.load(f'{a.dir}/uci.npy').astype(np.float64)
amz = rows(f'{a.dir}/amazon.jsonl'); Xa = np.load(f'{a.dir}/amazon.npy').astype(np.float64)
yu = np.array([r['label'] == 'positive' for r in uci], int)
ya = np.array([r['label'] == 'great' for r in amz], int)
dom = np.array([r['domain'] for r in uci])

vader = SentimentIntensityAnalyzer()
t = time.perf_counter()
cu = np.array([vader.polarity_scores(r['text'])['compound'] for r in uci])
ca = np.array([vader.polarity_scores(r['text'])['compound'] for r in amz])
vt = time.perf_counter() - t
out = {}
def acc(p, y): return round(float(np.mean(p == y)), 4)
out['VADER'] = dict(uci=acc((cu >= 0.05).astype(int), yu), amazon=acc((ca >= 0.05).astype(int), ya),
                    **{f'uci_{d}': acc((cu[dom == d] >= 0.05).astype(int), yu[dom == d]) for d in ('amazon', 'imdb', 'yelp')})
print('VADER', out['VADER'], f'{vt:.1f}s', flush=True)
print('amazon label balance great=', ya.mean().round(3))

# "simple lexicon": VADER's MIT lexicon, sum of word valences, a negation word (not/no/never/n't...)
# within the 3 previous tokens flips the sign (x -0.74, as VADER), normalised x/sqrt(x^2+15).
import re, os, vaderSentiment
LEX = {}
for line in open(os.path.join(os.path.dirname(vaderSentiment.__file__), 'vader_lexicon.txt'), encoding='utf-8'):
    parts = line.rstrip('\n').split('\t')
    if len(parts) >= 2:
        LEX[parts[0]] = float(parts[1])
NEG = {'not', 'no', 'never', 'none', 'nobody', 'nothing', 'neither', 'nor', 'cannot', 'without', 'hardly'}
def simple_lex(t):
    toks = re.findall(r"[a-z']+|[!?]", t.lower())
    tot = 0.0
    for i, w in enumerate(toks):
        v = LEX.get(w)
        if v is None: continue
        if any(p in NEG or p.endswith("n't") for p in toks[max(0, i - 3):i]): v *= -0.74
        tot += v
    return tot / np.sqrt(tot * tot + 15)
su = np.array([simple_lex(r['text']) for r in uci]); sa = np.array([simple_lex(r['text']) for r in amz])
out['simple_lex_alone'] = dict(uci=acc((su >= 0.05).astype(int), yu), amazon=acc((sa >= 0.05).astype(int), ya))
print('simple lexicon alone', out['simple_lex_alone'], flush=True)

def feats(X, comp, lex):
    if lex == 'vader': return np.hstack([X, comp[:, None]])
    if lex == 'simple': return np.hstack([X, (su if len(X) == len(su) else sa)[:, None]])
    return X

res = []
for lex in ('none', 'vader', 'simple'):
    Fu, Fa = feats(Xu, cu, lex), feats(Xa, ca, lex)
    for C in (0.1, 0.3, 1.0, 3.0, 10.0, 30.0):
        mk = lambda: LogisticRegression(C=C, max_iter=2000)
        # leave-one-domain-out
        lodo = {}
        for d in ('amazon', 'imdb', 'yelp'):
            tr, te = dom != d, dom == d
            m = mk().fit(Fu[tr], yu[tr]); lodo[d] = acc(m.predict(Fu[te]), yu[te])
        # 10-fold
        oof = np.zeros(len(yu))
        for tr, te in StratifiedKFold(10, shuffle=True, random_state=0).split(Fu, yu):
            oof[te] = mk().fit(Fu[tr], yu[tr]).predict_proba(Fu[te])[:, 1]
        m = mk().fit(Fu, yu)
        pa = m.predict_proba(Fa)[:, 1]
        r = dict(lex=lex, C=C, lodo_mean=round(np.mean(list(lodo.values())), 4), **{f'lodo_{k}': v for k, v in lodo.items()},
                 kfold10=acc((oof >= 0.5).astype(int), yu), amazon=acc((pa >= 0.5).astype(int), ya))
        # neutral band on amazon and on 10-fold UCI: accuracy on decided items vs share abstained
        for mgn in (0.1, 0.2, 0.3):
            keep = np.abs(pa - 0.5) >= mgn; ku = np.abs(oof - 0.5) >= mgn
            r[f'neutral{mgn}_amz_share'] = round(1 - keep.mean(), 3)
            r[f'neutral{mgn}_amz_acc'] = acc((pa[keep] >= 0.5).astype(int), ya[keep])
            r[f'neutral{mgn}_uci_share'] = round(1 - ku.mean(), 3)
            r[f'neutral{mgn}_uci_acc'] = acc((oof[ku] >= 0.5).astype(int), yu[ku])
        # best threshold on amazon in hindsight (for information only: shows calibration shift)
        ths = np.linspace(0.05, 0.95, 91)
        accs = [np.mean((pa >= th) == ya) for th in ths]
        r['amazon_oracle_thr'] = round(float(ths[int(np.argmax(accs))]), 2); r['amazon_oracle_acc'] = round(float(max(accs)), 4)
        res.append(r); print(json.dumps(r), flush=True)
json.dump(dict(vader=out['VADER'], simple=out['simple_lex_alone'], lr=res), open(f'{a.dir}/sentiment_results.json', 'w'), indent=1)

# export final model weights (lex=False, C chosen below) for Rust port
C = 1.0
m = LogisticRegression(C=C, max_iter=2000).fit(feats(Xu, cu, 'simple'), yu)
np.save(f'{a.dir}/sentiment_lr_w.npy', np.concatenate([m.coef_[0], m.intercept_]).astype(np.float32))
print('saved weights (384 emb + simple-lex, then intercept) C=', C)
m = LogisticRegression(C=C, max_iter=2000).fit(Xu, yu)
np.save(f'{a.dir}/sentiment_lr_w_emb_only.npy', np.concatenate([m.coef_[0], m.intercept_]).astype(np.float32))
print('saved weights (384 emb, then intercept) C=', C)
