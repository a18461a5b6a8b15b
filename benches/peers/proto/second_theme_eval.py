"""Evaluate the second-theme rule on UCI: themes fitted on the 3000 single sentences (candidate B,
average linkage, silhouette cut), then the rule is applied to singles (should rarely fire), to
same-domain pairs (control) and to cross-domain pairs (should fire, with the right second domain)."""
import json, os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themes_lib import *
from themes import load, method_B
X, y = load('/tmp/proto/uci_domain.jsonl', '/tmp/proto/uci.npy')
(out, (lab, merges, mlab, mm)) = method_B(X, y, 0, linkage='average', rule='silhouette')
pred, C, cos = assign_other(X, lab, max_share=0.0)
print('cos to own centroid quantiles', np.round(np.quantile(cos, [0.01, 0.05, 0.1, 0.25, 0.5]), 3))
# theme -> majority domain
dom_of = {t: max(set(y[pred == t].tolist()), key=list(y[pred == t]).count) for t in set(pred.tolist())}
print('theme->domain', dom_of)
P = np.load('/tmp/proto/uci_pairs.npy'); P /= np.linalg.norm(P, axis=1, keepdims=True)
pr = [json.loads(l) for l in open('/tmp/proto/uci_pairs.jsonl')]
kind = np.array([r['kind'] for r in pr])
plab = (P @ C.T).argmax(1)
for g in (0.02, 0.03, 0.05, 0.08):
    for mf in (0.25, 0.35):
        s_single = second_theme(X, pred, C, gamma=g, min_frac=mf, abs_thr=0.2)
        s_pair = second_theme(P, plab, C, gamma=g, min_frac=mf, abs_thr=0.2)
        # correctness on diff pairs: {theme1, theme2} domains == {dom a, dom b}
        ok = 0; fired = 0
        for i, r in enumerate(pr):
            if r['kind'] == 'diff' and s_pair[i] >= 0:
                fired += 1
                ok += {dom_of[plab[i]], dom_of[s_pair[i]]} == set(r['label'].split('+'))
        print(json.dumps(dict(gamma=g, min_frac=mf, singles_fire=round(float(np.mean(s_single >= 0)), 4),
              same_pairs_fire=round(float(np.mean(s_pair[kind == 'same'] >= 0)), 4),
              diff_pairs_fire=round(float(np.mean(s_pair[kind == 'diff'] >= 0)), 4),
              diff_pairs_correct_given_fire=round(ok / max(fired, 1), 4))), flush=True)

# ---- sentence rule on the pairs: the pair's two sentences are the original UCI rows a and b
k = len(C)
mu = np.array([cos[pred == t].mean() for t in range(k)]); sd = np.array([cos[pred == t].std() for t in range(k)])
A = np.array([r['a'] for r in pr]); B = np.array([r['b'] for r in pr])
SA = X[A] @ C.T; SB = X[B] @ C.T
for z_sent in (0.0, 0.5, 1.0):
    fire = np.zeros(len(pr), bool); okc = 0
    for i in range(len(pr)):
        for S_ in (SA[i], SB[i]):
            t = int(S_.argmax())
            if t != plab[i] and S_[t] >= mu[t] - z_sent * sd[t]:
                fire[i] = True
    print(json.dumps(dict(rule='sentence', z_sent=z_sent, same_pairs_fire=round(float(np.mean(fire[kind == 'same'])), 4),
                          diff_pairs_fire=round(float(np.mean(fire[kind == 'diff'])), 4))), flush=True)
