#!/usr/bin/env python3
"""Issue 14 prototype: a two-level theme tree on opinion units (parents = aspects, children = what
is said), candidates compared on the airline complaint reasons (NMI), SemEval laptops aspect
consistency and the Amazon tree.  Units and vectors come from units.py + `verbatim embed`.

  OMP_NUM_THREADS=1 python tree.py --name airline --dir /tmp/a3 --model minilm [--center]

Candidates (all deterministic given --seed):
  flat   today's verbatim-level algorithm on units: spherical k-means, k by silhouette in [5, 40]
  km2    two-level k-means: parents = k-means (k by silhouette in [4, 12]), children = k-means
         inside each parent (k by silhouette in [2, 8])
  mal    micro-clusters (k-means, m = sqrt(n) clamped 30..200) grouped by average linkage; parents
         = the cut whose point silhouette is best in [4, 12]; children = the parent's
         micro-clusters grouped by average linkage again, cut by silhouette in [2, 8]
  *-pc1/-pc2  the same after projecting out the top 1/2 principal directions of the centred
         verbatim means (the product/brand axis: what makes verbatims differ as wholes)
  *-X+neg  fit the tree on units VADER does not call positive (compound < 0.05), then put every
         other unit in its nearest child
  *-ctx  unit + 0.5 x its verbatim's mean (context added instead of removed)
  bertopic  BERTopic (peers.py settings) on the same unit vectors, one level, outliers = Other
  *-asp  the same on "aspect vectors": unit minus 0.5 x its verbatim's mean (units of one verbatim
         share its product; what is left is what the unit says about it), renormalised
Verbatim-level assignment for NMI: the theme of the verbatim's most negative unit (VADER compound;
ties: the longer unit).  Other: per theme, cos < mean - 2 sd and in the lowest 10% overall.
"""
import argparse, json, os, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themes_lib import skmeans, sample_idx, silhouette_pre, silhouette, agglomerate, cut, means
from sklearn.metrics import normalized_mutual_info_score as NMI


def unit(X):
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def pick_k(X, ks, seed, D, si, fit):
    best = None
    for k in ks:
        if k >= len(X) or k < 2:
            continue
        lab = fit(k)
        s = silhouette(D, lab[si])
        if best is None or s > best[0] + 1e-9:
            best = (s, k, lab)
    return best


def km_level(X, ks, seed):
    si = sample_idx(len(X), 2000, seed)
    D = silhouette_pre(X[si])
    if len(X) < 2 * min(ks):
        return np.zeros(len(X), int)
    res = pick_k(X, ks, seed, D, si, lambda k: skmeans(X, k, seed)[0])
    return res[2] if res else np.zeros(len(X), int)


def mal_level(X, ks, seed, m=None, linkage='average'):
    n = len(X)
    if n < 2 * min(ks):
        return np.zeros(n, int)
    m = m or int(min(200, max(30, round(np.sqrt(n)))))
    m = min(m, n // 3)
    if m <= max(ks):
        return km_level(X, ks, seed)
    mlab, C, _, _ = skmeans(X, m, seed)
    M, w = means(X, mlab, m)
    merges = agglomerate(M, w, linkage)
    si = sample_idx(n, 2000, seed)
    D = silhouette_pre(X[si])
    res = pick_k(X, ks, seed, D, si, lambda k: cut(merges, m, k)[mlab])
    return res[2]


def other_rule(X, lab, z=2.0, max_share=0.10):
    k = lab.max() + 1
    M, _ = means(X, lab, k)
    C = unit(M)
    cos = (X * C[lab]).sum(1)
    cnt = np.maximum(np.bincount(lab, minlength=k), 1)
    mu = np.bincount(lab, cos, k) / cnt
    sd = np.sqrt(np.maximum(np.bincount(lab, cos * cos, k) / cnt - mu ** 2, 0))
    thr = np.quantile(cos, max_share)
    return (cos < mu[lab] - z * sd[lab]) & (cos < thr)


def tree(X, algo, seed, pks=range(4, 13), cks=range(2, 9)):
    level = {'km2': km_level, 'mal': mal_level,
             'mward': lambda X, ks, seed: mal_level(X, ks, seed, linkage='ward')}[algo]
    parent = level(X, list(pks), seed)
    child = np.zeros(len(X), int)
    nxt = 0
    for p in range(parent.max() + 1):
        idx = np.where(parent == p)[0]
        c = level(X[idx], list(cks), seed) if len(idx) >= 40 else np.zeros(len(idx), int)
        child[idx] = c + nxt
        nxt += c.max() + 1
    oth = other_rule(X, child)
    return parent, child, oth


def flat(X, seed):
    lab = km_level(X, [5, 6, 7, 8, 10, 12, 15, 18, 20, 25, 30, 35, 40], seed)
    return lab, lab, other_rule(X, lab)


def bertopic(U, X, seed):
    """BERTopic on the same unit vectors, with peers.py's settings (UMAP 15/5/0.0 cosine, HDBSCAN
    min_cluster_size 10, eom); its outliers are Other."""
    from bertopic import BERTopic
    from umap import UMAP
    from hdbscan import HDBSCAN
    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric='cosine', random_state=seed)
    hdb = HDBSCAN(min_cluster_size=10, metric='euclidean', cluster_selection_method='eom', prediction_data=True)
    topics, _ = BERTopic(umap_model=umap, hdbscan_model=hdb).fit_transform([u['text'] for u in U], X.astype('float32'))
    t = np.array(topics)
    oth = t < 0
    t = np.where(oth, 0, t)
    return t, t, oth


def transform(X, vid, how):
    if how == '':
        return X
    nv = vid.max() + 1
    V, _ = means(X, vid, nv)
    if how == 'asp':
        return unit(X - 0.5 * V[vid])
    if how == 'ctx':   # the opposite: the verbatim's context added to each unit
        return unit(X + 0.5 * V[vid])
    p = int(how[2:])
    Vc = V - V.mean(0)
    _, _, Wt = np.linalg.svd(Vc, full_matrices=False)
    W = Wt[:p]
    Xc = X - X.mean(0)
    return unit(Xc - (Xc @ W.T) @ W)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--name', required=True)
    ap.add_argument('--dir', default='/tmp/a3')
    ap.add_argument('--model', default='minilm')
    ap.add_argument('--center', action='store_true', help='subtract the mean vector first (e5)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--variants', default='flat,km2,mal,mal-pc1,mal-pc2,mal-asp,km2-asp')
    ap.add_argument('--units', default=None)
    ap.add_argument('--show', action='store_true', help='print the tree (top words per node)')
    a = ap.parse_args()
    U = [json.loads(l) for l in open(a.units or f'{a.dir}/{a.name}_units.jsonl')]
    X = np.load(f'{a.dir}/{a.name}_{a.model}.npy').astype(np.float64)
    U = U[:len(X)]
    X = X[:len(U)]
    if a.center:
        X = X - X.mean(0)
    X = unit(X)
    vid = np.array([u['vid'] for u in U])
    docs = [json.loads(l) for l in open(f'{a.dir}/{a.name}_docs.jsonl')][:vid.max() + 1]
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    va = SentimentIntensityAnalyzer()
    comp = np.array([va.polarity_scores(u['text'])['compound'] for u in U])
    ln = np.array([len(u['text']) for u in U])
    # the verbatim's most negative unit (ties: longer)
    order = np.lexsort((-ln, comp, vid))
    rep = {}
    for i in order:
        rep.setdefault(vid[i], i)
    rep = np.array([rep[v] for v in range(vid.max() + 1)])
    for var in a.variants.split(','):
        algo, _, how = var.partition('-')
        negonly = how.endswith('+neg')   # fit on units VADER does not call positive, then place the rest
        how = how.removesuffix('+neg')
        t0 = time.perf_counter()
        Xt = transform(X, vid, how)
        if algo == 'bertopic':
            parent, child, oth = bertopic(U, Xt, a.seed)
        elif negonly:
            fit = comp < 0.05
            p1, c1, o1 = tree(Xt[fit], algo, a.seed)
            C = unit(means(Xt[fit], c1, c1.max() + 1)[0])
            near = (Xt @ C.T).argmax(1)
            child = near.copy(); child[fit] = c1
            pc = np.zeros(c1.max() + 1, int); pc[c1] = p1
            parent = pc[child]
            oth = np.zeros(len(Xt), bool); oth[fit] = o1
        else:
            parent, child, oth = flat(Xt, a.seed) if algo == 'flat' else tree(Xt, algo, a.seed)
        secs = time.perf_counter() - t0
        r = dict(name=a.name, model=a.model + ('-centred' if a.center else ''), variant=var,
                 units=len(X), parents=int(parent.max() + 1), children=int(child.max() + 1),
                 other_units=round(float(oth.mean()), 4), seconds=round(secs, 1))
        P = np.where(oth, -1, parent)
        Ch = np.where(oth, -1, child)
        if a.name == 'airline':
            y = np.array([d['label'] for d in docs])
            for lvl, L in (('parent', P), ('child', Ch)):
                pv = L[rep]
                r[f'nmi_{lvl}'] = round(float(NMI(y, pv)), 4)
                r[f'other_verbatims_{lvl}'] = round(float(np.mean(pv == -1)), 4)
            # largest unit variant
            order2 = np.lexsort((-ln, vid))
            rep2 = {}
            for i in order2:
                rep2.setdefault(vid[i], i)
            rep2 = np.array([rep2[v] for v in range(vid.max() + 1)])
            r['nmi_child_largest'] = round(float(NMI(y, Ch[rep2])), 4)
            # the child nearest to the verbatim's mean unit vector (Other when all its units are)
            for lvl, L in (('parent', P), ('child', Ch)):
                k = L.max() + 1
                C = unit(means(Xt[L >= 0], L[L >= 0], k)[0])
                V = unit(means(Xt, vid, vid.max() + 1)[0])
                pv = (V @ C.T).argmax(1)
                allo = np.bincount(vid, L < 0, vid.max() + 1) == np.bincount(vid, minlength=vid.max() + 1)
                r[f'nmi_{lvl}_mean'] = round(float(NMI(y, np.where(allo, -1, pv))), 4)
            r['nmi_parent_largest'] = round(float(NMI(y, P[rep2])), 4)
        if a.name == 'laptops':
            r.update(aspect_consistency(U, docs, vid, P))
        print(json.dumps(r), flush=True)
        if a.show:
            show(U, P, Ch)


def aspect_consistency(U, docs, vid, P):
    """For each aspect term (lower-cased) occurring >= 5 times: the share of its units (the unit
    holding the term's offsets) that land in the term's modal parent; micro-averaged over
    occurrences.  Units in Other count as misses.  Also the same for a random assignment with the
    same parent sizes (the floor)."""
    from collections import defaultdict, Counter
    by_v = defaultdict(list)
    for i, u in enumerate(U):
        by_v[u['vid']].append(i)
    occ = defaultdict(list)
    for v, d in enumerate(docs):
        for t in d.get('aspect_terms', []):
            for i in by_v[v]:
                if U[i]['start'] <= t['from'] < U[i]['end'] + 1:
                    occ[t['term'].lower()].append(i)
                    break
    def score(P):
        hit = tot = 0
        for t, idx in occ.items():
            if len(idx) < 5:
                continue
            c = Counter(P[i] for i in idx if P[i] >= 0)
            hit += c.most_common(1)[0][1] if c else 0
            tot += len(idx)
        return hit / max(tot, 1), tot
    s, tot = score(P)
    rng = np.random.default_rng(0)
    s0, _ = score(rng.permutation(P))
    return dict(aspect_consistency=round(s, 4), aspect_consistency_shuffled=round(s0, 4), term_occurrences=tot,
                terms=sum(1 for v in occ.values() if len(v) >= 5))


def show(U, P, Ch):
    import re
    from collections import Counter
    stop = set('the a an and or to of i it is was for in on my this that with but not you are be have '
               'they so just me at as we our your its were has had no very all from can will would if '
               'get got do did been there them what one out up more than when like these their about '
               'too much only also which some any product amp'.split())
    for p in sorted(set(P.tolist()) - {-1}):
        idx = np.where(P == p)[0]
        w = Counter(t for i in idx for t in set(re.findall(r"[a-z']+", U[i]['text'].lower())) if t not in stop and len(t) > 2)
        print(f'  P{p} ({len(idx)} units): ' + ', '.join(x for x, _ in w.most_common(8)))
        for c in sorted(set(Ch[idx].tolist()) - {-1}):
            jdx = idx[Ch[idx] == c]
            w = Counter(t for i in jdx for t in set(re.findall(r"[a-z']+", U[i]['text'].lower())) if t not in stop and len(t) > 2)
            print(f'      C{c} ({len(jdx)}): ' + ', '.join(x for x, _ in w.most_common(6)))


if __name__ == '__main__':
    main()
