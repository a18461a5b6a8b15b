"""Goal 1 prototype: theme discovery candidates on L2-normalised MiniLM embeddings (numpy only,
except candidate (c) which uses the hdbscan package).  Everything is deterministic given `seed`.

Label convention: themes 0..k-1, "other" = -1 (scored as one more class, same as BERTopic's -1).
"""
import time
import numpy as np


# ---------------------------------------------------------------- spherical k-means
def kmeanspp(X, k, rng):
    """k-means++ seeding with D^2 = 2 - 2 cos (unit vectors)."""
    n = len(X)
    C = np.empty((k, X.shape[1]), X.dtype)
    i = int(rng.integers(n)); C[0] = X[i]
    d2 = np.maximum(2.0 - 2.0 * (X @ C[0]), 0.0)
    for j in range(1, k):
        s = d2.sum()
        i = int(rng.integers(n)) if s <= 0 else int(np.searchsorted(np.cumsum(d2), rng.random() * s))
        i = min(i, n - 1)
        C[j] = X[i]
        d2 = np.minimum(d2, np.maximum(2.0 - 2.0 * (X @ C[j]), 0.0))
    return C


def skmeans(X, k, seed=0, iters=25, tol=1e-3, init_sample=20000, init=None):
    """Spherical k-means (cosine). k-means++ seeding on a seeded subsample (<= init_sample rows)
    for speed, then Lloyd on all rows; centroids re-normalised each step; empty clusters re-seeded
    from the worst-fitting point.  Returns (labels, unit centroids, cos to own centroid, iters)."""
    rng = np.random.default_rng(seed)
    n = len(X)
    S0 = X if n <= init_sample else X[np.sort(rng.choice(n, init_sample, replace=False))]
    C = kmeanspp(S0, k, rng) if init is None else init.copy()
    lab = np.full(n, -1)
    for it in range(iters):
        S = X @ C.T
        new = S.argmax(1)
        best = S[np.arange(n), new]
        changed = np.mean(new != lab)
        lab = new
        M = np.zeros_like(C)
        _segsum(X, lab, k, M)
        cnt = np.bincount(lab, minlength=k)
        for j in np.where(cnt == 0)[0]:   # re-seed empty
            w = int(np.argmin(best)); M[j] = X[w]; best[w] = 2.0
        C = M / np.maximum(np.linalg.norm(M, axis=1, keepdims=True), 1e-12)
        if changed < tol:
            break
    S = X @ C.T
    lab = S.argmax(1)
    return lab, C, S[np.arange(n), lab], it + 1


def _segsum(X, lab, k, M):
    order = np.argsort(lab, kind='stable')
    cnt = np.bincount(lab, minlength=k)
    starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    nz = cnt > 0
    M[nz] = np.add.reduceat(X[order], starts[nz], axis=0)
    return M


def means(X, lab, k):
    M = np.zeros((k, X.shape[1]), X.dtype)
    _segsum(X, lab, k, M)
    cnt = np.bincount(lab, minlength=k).astype(X.dtype)
    return M / np.maximum(cnt, 1)[:, None], cnt


# ---------------------------------------------------------------- silhouette (cosine) on a sample
def sample_idx(n, m, seed):
    rng = np.random.default_rng(seed + 1)
    return np.arange(n) if n <= m else np.sort(rng.choice(n, m, replace=False))


def silhouette_pre(Xs):
    return 1.0 - Xs @ Xs.T            # cosine distance matrix of the sample


def silhouette(D, lab):
    """Mean silhouette of sample with precomputed distance matrix D (m x m); singletons score 0."""
    u, inv = np.unique(lab, return_inverse=True)
    if len(u) < 2:
        return -1.0
    m = len(lab)
    Oh = np.zeros((m, len(u))); Oh[np.arange(m), inv] = 1.0
    cnt = Oh.sum(0)
    Ds = D @ Oh                                    # sum of distances to each cluster
    own = Ds[np.arange(m), inv]
    a = own / np.maximum(cnt[inv] - 1, 1)
    Dm = Ds / cnt[None, :]
    Dm[np.arange(m), inv] = np.inf
    b = Dm.min(1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    s[cnt[inv] <= 1] = 0.0
    return float(s.mean())


# ---------------------------------------------------------------- agglomeration of micro-clusters
def agglomerate(M, w, linkage='average'):
    """Agglomerate micro-clusters given their (un-normalised) mean vectors M and sizes w.
    average: merge pair with highest dot(mean_a, mean_b) = exact point-level average cosine.
    ward:    merge pair with lowest w_a w_b/(w_a+w_b) ||mean_a-mean_b||^2 (exact point-level Ward).
    Returns list of merges (a, b, height) and, for each step count k, nothing else: use cut()."""
    m = len(M)
    M = M.astype(np.float64).copy(); w = w.astype(np.float64).copy()
    alive = np.ones(m, bool)
    members = [[i] for i in range(m)]
    merges = []
    G = M @ M.T
    sq = np.diag(G).copy()
    for step in range(m - 1):
        idx = np.where(alive)[0]
        Gi = G[np.ix_(idx, idx)]
        if linkage == 'average':
            V = -Gi
        else:
            D2 = sq[idx][:, None] + sq[idx][None, :] - 2 * Gi
            V = (w[idx][:, None] * w[idx][None, :]) / (w[idx][:, None] + w[idx][None, :]) * D2
        np.fill_diagonal(V, np.inf)
        f = int(np.argmin(V)); a, b = idx[f // len(idx)], idx[f % len(idx)]
        h = float(V.flat[f])
        nw = w[a] + w[b]
        M[a] = (w[a] * M[a] + w[b] * M[b]) / nw; w[a] = nw; alive[b] = False
        members[a] = members[a] + members[b]; members[b] = []
        G[a, :] = M @ M[a]; G[:, a] = G[a, :]; sq[a] = G[a, a]
        merges.append((int(a), int(b), -h if linkage == 'average' else h))
    return merges


def cut(merges, m, k):
    """Micro-cluster -> theme map after applying the first m-k merges."""
    parent = list(range(m))
    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]; x = parent[x]
        return x
    for a, b, _ in merges[:m - k]:
        parent[find(b)] = find(a)
    roots = {}
    return np.array([roots.setdefault(find(i), len(roots)) for i in range(m)])


# ---------------------------------------------------------------- "other" assignment
def assign_other(X, lab, max_share=0.10, abs_thr=None, min_theme_share=0.0, z=None):
    """Dissolve themes smaller than min_theme_share*n (items go to the nearest surviving theme),
    then mark as other (-1) items whose cosine to their theme centroid is below
    min(abs_thr, the max_share quantile of those cosines)."""
    n = len(X)
    lab = lab.copy()
    k = lab.max() + 1
    cnt = np.bincount(lab, minlength=k)
    keep = np.where(cnt >= max(1, min_theme_share * n))[0]
    M, _ = means(X, lab, k)
    C = M[keep] / np.maximum(np.linalg.norm(M[keep], axis=1, keepdims=True), 1e-12)
    S = X @ C.T
    lab = S.argmax(1)
    cos = S[np.arange(n), lab]
    # refresh centroids after reassignment (one step)
    M, _ = means(X, lab, len(keep))
    C = M / np.maximum(np.linalg.norm(M, axis=1, keepdims=True), 1e-12)
    cos = (X * C[lab]).sum(1)
    thr = np.quantile(cos, max_share) if max_share > 0 else -2
    out = lab.copy()
    if z is not None:   # per-theme outliers: cos < mean_t - z*std_t, never more than max_share overall
        k2 = len(C)
        mu = np.bincount(lab, cos, k2) / np.maximum(np.bincount(lab, minlength=k2), 1)
        sd = np.sqrt(np.maximum(np.bincount(lab, cos * cos, k2) / np.maximum(np.bincount(lab, minlength=k2), 1) - mu ** 2, 0))
        out[(cos < mu[lab] - z * sd[lab]) & (cos < thr if max_share > 0 else True)] = -1
        return out, C, cos
    if abs_thr is not None:
        thr = min(thr, abs_thr)
    out[cos < thr] = -1
    return out, C, cos


def second_theme(X, lab, C, gamma=0.05, min_frac=0.3, abs_thr=0.3):
    """Two-topic test: project x on span{c1, c2} (c1 = own centroid, c2 = runner-up) with
    non-negative coefficients a, b.  Fires when (i) the cosine to the 2-D projection beats the cosine
    to c1 alone by >= gamma, (ii) b/(a+b) >= min_frac and (iii) cos(x, c2) >= abs_thr."""
    n = len(X)
    S = X @ C.T
    out = np.full(n, -1)
    ok = lab >= 0
    S2 = S.copy(); S2[np.arange(n), np.where(ok, lab, 0)] = -np.inf
    j2 = S2.argmax(1)
    c1 = C[np.where(ok, lab, 0)]; c2 = C[j2]
    s1 = (X * c1).sum(1); s2 = (X * c2).sum(1)
    g = (c1 * c2).sum(1)
    det = np.maximum(1 - g * g, 1e-9)
    a = (s1 - g * s2) / det; b = (s2 - g * s1) / det
    a = np.maximum(a, 0); b = np.maximum(b, 0)
    p = a[:, None] * c1 + b[:, None] * c2
    pn = np.linalg.norm(p, axis=1)
    cosp = (X * p).sum(1) / np.maximum(pn, 1e-12)
    fire = ok & (cosp - s1 >= gamma) & (b / np.maximum(a + b, 1e-12) >= min_frac) & (s2 >= abs_thr)
    out[fire] = j2[fire]
    return out
