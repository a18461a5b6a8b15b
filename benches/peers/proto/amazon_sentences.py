#!/usr/bin/env python3
"""Sentence-level variants on amazon_fine_foods (needs amazon_sents.jsonl/.npy from split_sentences.py
+ verbatim embed):
 1. sentiment: LR (trained on UCI sentences only) applied per sentence, review score = mean of
    sentence probabilities / mean of sentence embeddings, vs whole-review embedding and VADER;
 2. second theme, sentence rule: themes fitted on whole reviews (candidate A); a review gets a second
    theme when one of its sentences (>= min_words words) is closest to another theme and is a
    confident member of it (cos >= mean_t - z_sent*sd_t of that theme's whole-review cosines)."""
import json, os, sys, re
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themes_lib import *
from themes import method_A, load
from sklearn.linear_model import LogisticRegression
D = sys.argv[1] if len(sys.argv) > 1 else '/tmp/proto'
rows = lambda p: [json.loads(l) for l in open(p) if l.strip()]
uci = rows(f'{D}/uci.jsonl'); Xu = np.load(f'{D}/uci.npy').astype(np.float64)
amz = rows(f'{D}/amazon.jsonl'); Xa = np.load(f'{D}/amazon.npy').astype(np.float64)
sr = rows(f'{D}/amazon_sents.jsonl'); Xs = np.load(f'{D}/amazon_sents.npy').astype(np.float64)
doc = np.array([r['doc'] for r in sr]); nd = len(amz)
yu = np.array([r['label'] == 'positive' for r in uci], int); ya = np.array([r['label'] == 'great' for r in amz], int)
cnt = np.bincount(doc, minlength=nd)
print('sentences per review: mean %.2f median %d; single-sentence reviews %.3f' % (cnt.mean(), np.median(cnt), np.mean(cnt == 1)))
for C in (0.3, 1.0, 3.0):
    m = LogisticRegression(C=C, max_iter=2000).fit(Xu, yu)
    p_doc = m.predict_proba(Xa)[:, 1]
    ps = m.predict_proba(Xs)[:, 1]
    p_mean = np.bincount(doc, ps, nd) / cnt
    E = np.zeros((nd, Xs.shape[1])); np.add.at(E, doc, Xs); E /= np.linalg.norm(E, axis=1, keepdims=True)
    p_emb = m.predict_proba(E)[:, 1]
    p_mix = (p_doc + p_mean) / 2
    print(json.dumps(dict(C=C, whole=round(float(np.mean((p_doc >= .5) == ya)), 4), sent_mean_prob=round(float(np.mean((p_mean >= .5) == ya)), 4),
                          sent_mean_emb=round(float(np.mean((p_emb >= .5) == ya)), 4), whole_plus_sent=round(float(np.mean((p_mix >= .5) == ya)), 4))), flush=True)

# ---- second theme, sentence rule
X, _ = load(f'{D}/amazon.jsonl', f'{D}/amazon.npy')
Xs32 = (Xs / np.linalg.norm(Xs, axis=1, keepdims=True)).astype(np.float32)
(r0, r1, r2) = method_A(X, np.array([r['label'] for r in amz]), 0)
# re-derive final themes (same as method_A's z=2 output)
lab, Cc, _, _ = skmeans(X, r0['k'], 0)
pred, C, cos = assign_other(X, lab, max_share=0.10, z=2.0)
k = len(C)
mu = np.array([cos[pred == t].mean() for t in range(k)]); sd = np.array([cos[pred == t].std() for t in range(k)])
S = Xs32 @ C.T; st = S.argmax(1); sc = S[np.arange(len(S)), st]
nw = np.array([len(r['text'].split()) for r in sr])
for z_sent in (0.0, 0.5, 1.0):
    for min_words in (4, 6):
        conf = (sc >= mu[st] - z_sent * sd[st]) & (nw >= min_words) & (st != pred[doc]) & (pred[doc] >= 0)
        fired = np.zeros(nd, bool); fired[np.unique(doc[conf])] = True
        multi = cnt >= 2
        print(json.dumps(dict(rule='sentence', z_sent=z_sent, min_words=min_words, themes=k,
                              fire_all=round(float(fired.mean()), 4), fire_multi_sentence=round(float(fired[multi].mean()), 4))), flush=True)
for g in (0.03, 0.05):
    s2 = second_theme(X, pred, C, gamma=g, min_frac=0.3, abs_thr=0.2)
    print(json.dumps(dict(rule='projection', gamma=g, fire_all=round(float(np.mean(s2 >= 0)), 4))), flush=True)
# a few examples for eyeballing
conf = (sc >= mu[st]) & (nw >= 6) & (st != pred[doc]) & (pred[doc] >= 0)
ex = np.unique(doc[conf])[:5]
for d in ex:
    print('EX theme', pred[d], '| second', sorted(set(st[(doc == d) & conf].tolist())), '|', amz[d]['text'][:300].replace('\n', ' '))
