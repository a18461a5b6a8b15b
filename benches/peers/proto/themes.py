#!/usr/bin/env python3
"""Goal 1 runner: compare theme-discovery candidates on one embedded data set.

  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 10 python themes.py --input X.jsonl --vectors X.npy [--methods A,B,C]

Labels are the input's `label` field (for UCI 3-domain use a copy with label := domain).
Prints one JSON line per configuration: nmi, ari (sklearn, as peers.py), themes, other_share, seconds.
"""
import argparse, json, os, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themes_lib import *
from sklearn.metrics import normalized_mutual_info_score as NMI, adjusted_rand_score as ARI

KGRID = [3, 4, 5, 6, 7, 8, 10, 12, 15, 18, 20, 25, 30, 35, 40]


def load(inp, vec, limit=None):
    lab = []
    with open(inp, encoding='utf-8') as f:
        for l in f:
            if l.strip():
                lab.append(str(json.loads(l).get('label')))
                if limit and len(lab) >= limit: break
    X = np.load(vec).astype(np.float32)[:len(lab)]
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return X, np.array(lab)


def report(name, y, pred, t0, extra=None):
    r = dict(method=name, n=len(y), themes=int(len(set(pred.tolist()) - {-1})),
             other_share=round(float(np.mean(pred == -1)), 4),
             nmi=round(float(NMI(y, pred)), 4), ari=round(float(ARI(y, pred)), 4),
             seconds=round(time.perf_counter() - t0, 2))
    sizes = np.bincount(pred[pred >= 0]) if (pred >= 0).any() else np.array([0])
    r['largest_share'] = round(float(sizes.max() / len(pred)), 3)
    r['smallest'] = int(sizes[sizes > 0].min()) if (sizes > 0).any() else 0
    if extra: r.update(extra)
    print(json.dumps(r), flush=True)
    return r


def method_A(X, y, seed, sil_n=2000, sel_n=10000, max_share=0.10, kmin=5, kmax=40):
    """(a) spherical k-means, k chosen by cosine silhouette on a 2000-row sample; selection fits on
    <= sel_n rows, final fit on all rows."""
    t0 = time.perf_counter()
    n = len(X)
    si = sample_idx(n, sil_n, seed); D = silhouette_pre(X[si])
    sel = sample_idx(n, sel_n, seed + 7); Xsel = X[sel]
    pos = np.searchsorted(sel, si)  # silhouette sample ⊂ sel when n>sel_n? not guaranteed -> assign by centroid
    scores = {}; cents = {}
    for k in KGRID:
        if k >= n: break
        if k < kmin or k > kmax: continue
        _, C, _, _ = skmeans(Xsel, k, seed); cents[k] = C
        scores[k] = silhouette(D, (X[si] @ C.T).argmax(1))
    kbest = max(scores, key=scores.get)
    t_sel = time.perf_counter() - t0
    # final: Lloyd on all rows warm-started from the selection fit (<= 10 iterations)
    lab, C, cos, it = skmeans(X, kbest, seed, iters=10, init=cents[kbest])
    t_fit = time.perf_counter() - t0 - t_sel
    out = []
    for ms, z in ((0.0, None), (max_share, 2.0), (max_share, None)):
        pred, C2, _ = assign_other(X, lab, max_share=ms, z=z)
        out.append(report(f'A skmeans+silhouette kmin={kmin} other<={ms} z={z}', y, pred, t0,
                          dict(k=kbest, t_select=round(t_sel, 2), t_final_fit=round(t_fit, 2), final_iters=it,
                               sil={k: round(v, 4) for k, v in scores.items()})))
    # fixed-k references (what k-means would do if k were known)
    return out


def method_B(X, y, seed, m=None, linkage='average', rule='silhouette', sil_n=2000, max_share=0.10,
             kmin=3, kmax=40, min_theme_share=0.0, tag='', refine=0):
    """(b) micro-clusters (spherical k-means, m of them) -> agglomeration of micro-cluster means ->
    automatic cut -> other."""
    t0 = time.perf_counter()
    n = len(X)
    if m is None:
        m = int(min(200, max(30, round(np.sqrt(n)))))
    mlab, C, cos, it = skmeans(X, m, seed)
    t1 = time.perf_counter()
    M, w = means(X, mlab, m)
    live = w > 0
    remap = -np.ones(m, int); remap[live] = np.arange(live.sum())
    mlab = remap[mlab]; M = M[live]; w = w[live]; mm = len(M)
    merges = agglomerate(M, w, linkage)
    t2 = time.perf_counter()
    hs = np.array([h for _, _, h in merges])
    ks = [k for k in range(kmin, min(kmax, mm) + 1)]
    info = {}
    if rule == 'silhouette':
        si = sample_idx(n, sil_n, seed); D = silhouette_pre(X[si])
        sc = {k: silhouette(D, cut(merges, mm, k)[mlab[si]]) for k in ks}
        kbest = max(sc, key=sc.get)
        info['sil_top'] = sorted(((round(v, 4), k) for k, v in sc.items()), reverse=True)[:3]
    elif rule == 'gap':   # largest relative jump in merge height, k within [kmin,kmax]
        # merge j (0-based) goes from mm-j clusters to mm-j-1; height h_j.  Cutting before merge j leaves mm-j.
        best, kbest = -np.inf, kmin
        for k in ks:
            j = mm - k            # the merge that would take k -> k-1
            if j <= 0 or j >= len(hs): continue
            if linkage == 'average':   # similarity drops: gap = h_{j-1} - h_j
                g = hs[j - 1] - hs[j]
            else:
                g = hs[j] / max(hs[j - 1], 1e-12)
            if g > best: best, kbest = g, k
    elif rule.startswith('thr'):  # average linkage: stop when best similarity < t
        t = float(rule[3:])
        j = int(np.sum(hs >= t)); kbest = int(np.clip(mm - j, kmin, kmax))
    lab = cut(merges, mm, kbest)[mlab]
    if refine:   # Lloyd iterations on all rows starting from the merged themes' centroids
        Mt, _ = means(X, lab, kbest); C0 = Mt / np.linalg.norm(Mt, axis=1, keepdims=True)
        for _ in range(refine):
            lab = (X @ C0.T).argmax(1); Mt, _ = means(X, lab, kbest)
            C0 = Mt / np.maximum(np.linalg.norm(Mt, axis=1, keepdims=True), 1e-12)
        lab = (X @ C0.T).argmax(1)
    t3 = time.perf_counter()
    out = []
    for ms, z in ((0.0, None), (max_share, 2.0), (max_share, None)):
        pred, C2, _ = assign_other(X, lab, max_share=ms, min_theme_share=min_theme_share, z=z)
        out.append(report(f'B micro{m}+{linkage}+{rule}{tag} kmin={kmin} refine={refine} other<={ms} z={z}', y, pred, t0,
                          dict(k=kbest, m=mm, t_micro=round(t1 - t0, 2), t_agg=round(t2 - t1, 2),
                               t_cut=round(t3 - t2, 2), **info)))
    return out, (lab, merges, mlab, mm)


def method_C(X, y, seed, dims=15, mcs=None, min_samples=None, max_share=0.10):
    """(c) PCA(dims) + HDBSCAN, noise reassigned to the nearest cluster centroid (cosine, full space)
    unless below the other threshold."""
    import hdbscan
    from sklearn.decomposition import PCA
    t0 = time.perf_counter()
    n = len(X)
    if mcs is None:
        mcs = max(10, n // 200)
    Z = PCA(dims, random_state=seed, svd_solver='randomized').fit_transform(X)
    h = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min_samples, core_dist_n_jobs=1).fit(Z)
    raw = h.labels_
    noise = float(np.mean(raw == -1)); kraw = int(raw.max() + 1)
    out = []
    if kraw < 1:
        print(json.dumps(dict(method=f'C pca{dims}+hdbscan mcs={mcs}', failed='no clusters')), flush=True); return out
    M, w = means(X, np.where(raw >= 0, raw, 0), kraw) if False else (None, None)
    # centroids from clustered points only
    ok = raw >= 0
    Mc, _ = means(X[ok], raw[ok], kraw)
    Cc = Mc / np.linalg.norm(Mc, axis=1, keepdims=True)
    full = raw.copy(); full[~ok] = (X[~ok] @ Cc.T).argmax(1)
    report(f'C pca{dims}+hdbscan mcs={mcs} raw', y, raw, t0, dict(noise=round(noise, 4)))
    for ms, z in ((0.0, None), (max_share, 2.0)):
        pred, _, _ = assign_other(X, full, max_share=ms, z=z)
        out.append(report(f'C pca{dims}+hdbscan mcs={mcs} ms={min_samples} other<={ms} z={z}', y, pred, t0,
                          dict(raw_noise=round(noise, 4))))
    return out


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--input', required=True); ap.add_argument('--vectors', required=True)
    ap.add_argument('--limit', type=int); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--methods', default='A,B,C'); ap.add_argument('--fixedk', default='')
    a = ap.parse_args()
    X, y = load(a.input, a.vectors, a.limit)
    print(json.dumps(dict(data=a.input, n=len(X), classes=len(set(y.tolist())))), flush=True)
    ms = a.methods.split(',')
    for k in [int(v) for v in a.fixedk.split(',') if v]:
        t0 = time.perf_counter(); lab, _, _, _ = skmeans(X, k, a.seed)
        report(f'ref skmeans k={k}', y, lab, t0)
    if 'A' in ms:
        method_A(X, y, a.seed)
    if 'A3' in ms:
        method_A(X, y, a.seed, kmin=3)
    if 'Bfinal' in ms:
        for link in ('average', 'ward'):
            method_B(X, y, a.seed, linkage=link, rule='silhouette', kmin=5, refine=10)
    if 'B' in ms:
        for link in ('average', 'ward'):
            for rule in ('silhouette', 'gap'):
                method_B(X, y, a.seed, linkage=link, rule=rule)
    if 'B200' in ms:
        for link in ('average', 'ward'):
            method_B(X, y, a.seed, m=200, linkage=link, rule='silhouette')
    if 'C' in ms:
        n = len(X)
        for mcs in sorted({10, max(10, n // 200), max(10, n // 100)}):
            method_C(X, y, a.seed, dims=15, mcs=mcs)
        method_C(X, y, a.seed, dims=10, mcs=max(10, n // 200))
