#!/usr/bin/env python3
"""Robustness of candidate (a)'s k selection across seeds and criteria.
criteria: sil = cosine silhouette on a 2000-row sample; ssil = simplified silhouette
(a = 1-cos to own centroid, b = 1-cos to runner-up centroid) on all selection rows."""
import argparse, json, os, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themes_lib import *
from themes import load, KGRID
from sklearn.metrics import normalized_mutual_info_score as NMI, adjusted_rand_score as ARI

def ssil(Xs, C):
    S = Xs @ C.T
    o = np.sort(S, 1)
    a = 1 - o[:, -1]; b = 1 - o[:, -2]
    return float(np.mean((b - a) / np.maximum(np.maximum(a, b), 1e-12)))

ap = argparse.ArgumentParser(); ap.add_argument('--input'); ap.add_argument('--vectors')
ap.add_argument('--seeds', default='0,1,2,3,4'); ap.add_argument('--sel_n', type=int, default=10000)
ap.add_argument('--restarts', type=int, default=1)
a = ap.parse_args()
X, y = load(a.input, a.vectors)
n = len(X)
for seed in [int(s) for s in a.seeds.split(',')]:
    t0 = time.perf_counter()
    si = sample_idx(n, 2000, seed); D = silhouette_pre(X[si])
    sel = sample_idx(n, a.sel_n, seed + 7); Xs = X[sel]
    sc = {'sil': {}, 'ssil': {}}
    for k in KGRID:
        best = None
        for r in range(a.restarts):   # best-of-restarts by k-means objective
            lab, C, cos, _ = skmeans(Xs, k, seed * 100 + r)
            if best is None or cos.sum() > best[0]: best = (cos.sum(), C)
        C = best[1]
        sc['sil'][k] = silhouette(D, (X[si] @ C.T).argmax(1))
        sc['ssil'][k] = ssil(Xs, C)
    tsel = time.perf_counter() - t0
    for crit in ('sil', 'ssil'):
        for kmin in (3, 5):
            cand = {k: v for k, v in sc[crit].items() if k >= kmin}
            kb = max(cand, key=cand.get)
            lab, C, cos, _ = skmeans(X, kb, seed)
            print(json.dumps(dict(seed=seed, crit=crit, kmin=kmin, k=kb, nmi=round(float(NMI(y, lab)), 4),
                                  ari=round(float(ARI(y, lab)), 4), sel_s=round(tsel, 2),
                                  curve={k: round(v, 4) for k, v in sc[crit].items()} if kmin == 3 else None)), flush=True)
