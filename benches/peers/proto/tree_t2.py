#!/usr/bin/env python3
"""Issue 14, third pass (helper t2): finer, issue-level children.  Same units, vectors, "Other"
rule and verbatim "mean" rule as tree.py / tree_a7.py; the parents are a3's (micro-clusters +
Ward, silhouette in 4..12, aspect vectors α = 0.5); what changes is how many children a parent
gets and how they are cut.

  OMP_NUM_THREADS=1 python tree_t2.py --dir /tmp/t2 --name airline --variants sil,cap0.05,...

Children rules (inside each parent, always followed by k-means refinement inside the parent, a7):
  sil        a3's rule: Ward cut of the parent's micro-clusters, k by silhouette in 2..8
  capS[mM]   top-down split of the parent's Ward dendrogram: a node holding more units than S x
             the number of verbatims (--per verbatims, default: then no child holds more than S
             of the verbatims, since a child's verbatims are at most its units) is split into its two branches; a branch under M of all units (default S/5)
             is not a child (its units join their nearest child in the refinement)
  kT         k = round(units of the parent / (T · all units)), Ward cut at that k
  Parents: 'p:sil' (default) or 'p:capS' the same rule one level up.
Reported per row: parents, children, other units, NMI parent/child (mean rule), and the share of
verbatims each child holds (a verbatim is in a child when one of its units is): median, max, and
how many children hold 1-10 %.
"""
import argparse, json, os, sys, time
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from themes_lib import skmeans, agglomerate, cut, means
from tree import unit, mal_level, other_rule
from sklearn.metrics import normalized_mutual_info_score as NMI


def micro(X, seed):
    n = len(X)
    m = int(min(200, max(30, round(np.sqrt(n)))))
    m = min(m, max(n // 3, 1))
    mlab, _, _, _ = skmeans(X, m, seed)
    M, w = means(X, mlab, m)
    return mlab, m, agglomerate(M, w, 'ward'), w


def cap_split(mlab, m, merges, w, cap, minsize):
    """Top-down split of the Ward dendrogram (nodes >= m are merges). Returns group of each
    micro-cluster (-1: dropped, a branch under minsize)."""
    node_of = list(range(m))
    kids = {}
    size = {i: float(w[i]) for i in range(m)}
    for t, (a, b, _) in enumerate(merges):
        nid = m + t
        kids[nid] = (node_of[a], node_of[b])
        size[nid] = size[node_of[a]] + size[node_of[b]]
        node_of[a] = nid
    root = m + len(merges) - 1 if merges else 0
    out, stack = [], [root]
    while stack:
        v = stack.pop()
        if size[v] > cap and v in kids:
            l, r = kids[v]
            big = [c for c in (l, r) if size[c] >= minsize]
            if len(big) == 2:
                stack += [l, r]
            elif len(big) == 1:
                stack.append(big[0])   # the small branch is dropped (joins its nearest child later)
            else:
                out.append(v)
        elif size[v] >= minsize or not out and not stack:
            out.append(v)
    leaves = {}
    def collect(v, g):
        if v in kids:
            collect(kids[v][0], g); collect(kids[v][1], g)
        else:
            leaves[v] = g
    for g, v in enumerate(out):
        collect(v, g)
    return np.array([leaves.get(i, -1) for i in range(m)])


def refine(X, lab, rounds=10):
    k = lab.max() + 1
    C = unit(means(X, lab, k)[0])
    for _ in range(rounds):
        new = (X @ C.T).argmax(1)
        if (new == lab).all():
            break
        lab = new
        C = unit(means(X, lab, k)[0])
    _, lab = np.unique(lab, return_inverse=True)
    return lab


def children(X, rule, seed, N):
    n = len(X)
    if n < 40:
        return np.zeros(n, int)
    if rule == 'sil':
        lab = mal_level(X, list(range(2, 9)), seed, linkage='ward')
    elif rule.startswith('cap'):
        s = rule[3:]
        s, _, mm = s.partition('m')
        cap = float(s) * N
        minsize = float(mm) * N if mm else cap / 5
        if n <= cap:
            return np.zeros(n, int)
        mlab, m, merges, w = micro(X, seed)
        g = cap_split(mlab, m, merges, w, cap, minsize)
        lab = g[mlab]
        if (lab < 0).any():
            k = lab.max() + 1
            C = unit(means(X[lab >= 0], lab[lab >= 0], k)[0])
            lab = np.where(lab < 0, (X @ C.T).argmax(1), lab)
    elif rule.startswith('k'):
        k = max(1, int(round(n / (float(rule[1:]) * N))))
        if k == 1:
            return np.zeros(n, int)
        mlab, m, merges, w = micro(X, seed)
        lab = cut(merges, m, min(k, m))[mlab]
    else:
        raise ValueError(rule)
    return refine(X, lab) if lab.max() > 0 else lab


def bottom_up(X, crule, seed, N, pks=range(4, 13)):
    """Children first (the size rule over all units, as one parent), then parents = the children
    grouped by Ward on their mean vectors, cut by unit silhouette in pks."""
    from themes_lib import sample_idx, silhouette_pre, silhouette
    child = children(X, crule, seed, N)
    k = child.max() + 1
    M, w = means(X, child, k)
    merges = agglomerate(M, w, 'ward')
    si = sample_idx(len(X), 2000, seed)
    D = silhouette_pre(X[si])
    best = None
    for kp in pks:
        if kp >= k:
            break
        cmap = cut(merges, k, kp)
        sc = silhouette(D, cmap[child][si])
        if best is None or sc > best[0] + 1e-9:
            best = (sc, cmap)
    cp = best[1] if best else np.zeros(k, int)
    return cp, child


def build(X, crule, prule, seed, N):
    if prule == 'bu':
        cp, child = bottom_up(X, crule, seed, N)
        return cp, child, other_rule(X, child)
    if prule == 'sil':
        parent = mal_level(X, list(range(4, 13)), seed, linkage='ward')
    else:
        parent = children(X, prule, seed, N)
    child = np.zeros(len(X), int)
    nxt = 0
    for p in range(parent.max() + 1):
        idx = np.where(parent == p)[0]
        c = children(X[idx], crule, seed + 1 + p, N)
        child[idx] = c + nxt
        nxt += c.max() + 1
    cp = np.zeros(nxt, int)
    cp[child] = parent
    oth = other_rule(X, child)
    return cp, child, oth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--name', default='airline')
    ap.add_argument('--dir', default='/tmp/t2')
    ap.add_argument('--model', default='minilm')
    ap.add_argument('--center', action='store_true')
    ap.add_argument('--alpha', type=float, default=0.5)
    ap.add_argument('--abtt', type=int, default=0, help='remove the mean and this many top principal directions')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--per', default='verbatims', help='S and T are shares of verbatims (units of a node vs S x verbatims) or of units')
    ap.add_argument('--variants', default='sil,cap0.05,cap0.03,k0.03')
    a = ap.parse_args()
    U = [json.loads(l) for l in open(f'{a.dir}/{a.name}_units.jsonl')]
    X = np.load(f'{a.dir}/{a.name}_{a.model}.npy').astype(np.float64)
    if a.center:
        X = X - X.mean(0)
    if a.abtt:   # all-but-the-top: centre, remove the top principal directions
        X = X - X.mean(0)
        _, _, Wt = np.linalg.svd(X[::max(1, len(X) // 5000)], full_matrices=False)
        W = Wt[:a.abtt]
        X = X - (X @ W.T) @ W
    X = unit(X)
    vid = np.array([u['vid'] for u in U])
    nv = vid.max() + 1
    docs = [json.loads(l) for l in open(f'{a.dir}/{a.name}_docs.jsonl')][:nv]
    V, _ = means(X, vid, nv)
    Xt = unit(X - a.alpha * V[vid]) if a.alpha else X
    for var in a.variants.split(','):
        crule, _, prule = var.partition('/')
        prule = prule or 'sil'
        t0 = time.perf_counter()
        cp, child, oth = build(Xt, crule, prule, a.seed, nv if a.per == 'verbatims' else len(Xt))
        secs = time.perf_counter() - t0
        Ch = np.where(oth, -1, child)
        k = child.max() + 1
        # share of verbatims per child (a verbatim is in every child one of its units is in)
        inc = np.zeros((nv, k), bool)
        inc[vid[Ch >= 0], Ch[Ch >= 0]] = True
        share = inc.mean(0)
        r = dict(name=a.name, model=a.model + ('-c' if a.center else ''), variant=var, alpha=a.alpha, abtt=a.abtt, seed=a.seed,
                 parents=int(cp.max() + 1), children=int(k), other_units=round(float(oth.mean()), 4),
                 share_median=round(float(np.median(share)), 4), share_max=round(float(share.max()), 4),
                 in_1_10=f'{int(((share >= 0.01) & (share <= 0.10)).sum())}/{k}', seconds=round(secs, 1))
        if a.name == 'airline':
            y = np.array([d['label'] for d in docs])
            Vt = unit(means(Xt, vid, nv)[0])
            allo = np.bincount(vid, Ch < 0, nv) == np.bincount(vid, minlength=nv)
            C = unit(means(Xt[Ch >= 0], Ch[Ch >= 0], k)[0])
            pv = (Vt @ C.T).argmax(1)
            r['nmi_child'] = round(float(NMI(y, np.where(allo, -1, pv))), 4)
            r['nmi_parent'] = round(float(NMI(y, np.where(allo, -1, cp[pv]))), 4)
            r['other_verbatims'] = round(float(allo.mean()), 4)
        if a.name == 'laptops':
            from tree import aspect_consistency
            r.update(aspect_consistency(U, docs, vid, np.where(oth, -1, cp[child])))
        print(json.dumps(r), flush=True)


if __name__ == '__main__':
    main()
