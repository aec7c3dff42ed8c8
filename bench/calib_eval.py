#!/usr/bin/python3
"""calib_eval.py — why calibrated confidence's ECE does or does not beat the vote share's,
and whether a change of the calibration (core/embed/sx_transfer_calib.c) would lower it:
a bench/trust_eval.sh helper (issue 16), no part of the product.

Usage: /usr/bin/python3 bench/calib_eval.py OUTDIR DATASET LABEL
  OUTDIR is a bench/trust_eval.sh output folder; every OUTDIR/DATASET/seed*/full is read
  (ref.h5ad, query.h5ad: the latents; off/adata.h5ad: scalex transfer --unknown off).

It redoes scalex's confidence in numpy (5-NN vote, 15-NN distance-weighted probability of the
chosen class, isotonic fit on held-out reference cells: leave-one-batch-out pooled with
leave-one-out, blocks shrunk by one pseudo-observation towards 1/2), checks it equals the
confidence scalex wrote (max |diff|), then scores, per seed and as mean ± SD:
  current     scalex's confidence
  vote        SCALEX's 5-NN vote share
  raw         the uncalibrated 15-NN distance-weighted probability
  cv_blend    a * isotonic + (1 - a) * raw, a in 0, 0.1, ..., 1 by 5-fold cross-validated
              Brier score on the held-out reference cells (never the query)
  cv_shrink   isotonic blocks shrunk towards their own mean raw probability with m pseudo-
              cells, m in 0 .. 50 by the same cross-validation
with ECE (10 and 15 equal-width bins, 10 equal-mass bins), the ECE floor (what a perfectly
calibrated score with the same values shows on this many cells) and the Brier score. It also
prints the calibration set's size, its accuracy and its number of wrong cells next to the
query's accuracy: a reference that its own held-out cells predict almost without error gives
the isotonic fit nothing to learn the low-confidence region from.
"""
import glob
import sys

import anndata as ad
import numpy as np

from trust_eval import ece, ece_equal_mass, ece_floor

K, KP = 5, 15  # sx_transfer's k and k_prob defaults


def knn(P, Q, k):
    d2 = np.maximum((Q * Q).sum(1)[:, None] - 2 * Q @ P.T + (P * P).sum(1)[None, :], 0)
    ix = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return ix, np.sqrt(np.take_along_axis(d2, ix, 1))


def score(nb, d, nc):
    """5-NN vote winner (first class among ties), distance-weighted probabilities, vote share."""
    m = len(nb)
    votes = np.zeros((m, nc))
    for j in range(K):
        votes[np.arange(m), nb[:, j]] += 1
    w = np.zeros((m, nc))
    for j in range(nb.shape[1]):
        w[np.arange(m), nb[:, j]] += 1 / np.maximum(d[:, j], 1e-300)
    return votes.argmax(1), w / w.sum(1, keepdims=True), votes.max(1) / K


def held_out(R, codes, batch, nc):
    """(raw probability of the chosen class, chosen == own) of held-out reference cells."""
    passes = []
    if len(np.unique(batch)) >= 2:
        for b in np.unique(batch):
            pool, cells = np.where(batch != b)[0], np.where(batch == b)[0]
            ix, d = knn(R[pool], R[cells], min(KP, len(pool)))
            passes.append((cells, pool[ix], d))
    ix, d = knn(R, R, KP + 1)
    keep = np.array([[j for j in range(KP + 1) if ix[i, j] != i][:KP] for i in range(len(R))])
    passes.append((np.arange(len(R)), np.take_along_axis(ix, keep, 1), np.take_along_axis(d, keep, 1)))
    x, y = [], []
    for cells, nb, dd in passes:
        best, w, _ = score(codes[nb], dd, nc)
        x.append(w[np.arange(len(cells)), best])
        y.append((best == codes[cells]).astype(float))
    return np.concatenate(x), np.concatenate(y)


def pava(x, y):
    """sx_transfer_calib.c's isotonic_fit before shrinkage: block sums of x, y and counts."""
    o = np.argsort(x, kind="stable")
    SX, SY, C = [], [], []
    for xi, yi in zip(x[o], y[o]):
        if SX and xi == SX[-1] / C[-1]:
            SX[-1] += xi; SY[-1] += yi; C[-1] += 1
        else:
            SX.append(xi); SY.append(yi); C.append(1)
        while len(SX) > 1 and SY[-2] / C[-2] >= SY[-1] / C[-1]:
            SX[-2] += SX[-1]; SY[-2] += SY[-1]; C[-2] += C[-1]
            SX.pop(); SY.pop(); C.pop()
    return np.array(SX), np.array(SY), np.array(C)


def iso_half(x, y):
    """scalex's: each block shrunk towards 1/2 by one pseudo-observation."""
    SX, SY, C = pava(x, y)
    return SX / C, np.maximum.accumulate((SY + 0.5) / (C + 1))


def iso_raw(x, y, m):
    """Each block shrunk towards its mean raw probability by m pseudo-cells."""
    SX, SY, C = pava(x, y)
    kx = SX / C
    return kx, np.maximum.accumulate((SY + m * kx) / (C + m))


def cv(x, y, grid, predict, folds=5):
    """The grid value with the least held-out Brier score over folds of the calibration set."""
    idx = np.random.default_rng(1).permutation(len(x))
    loss = np.zeros(len(grid))
    for f in range(folds):
        te = idx[f::folds]
        tr = np.setdiff1d(idx, te)
        for g, v in enumerate(grid):
            loss[g] += np.sum((predict(x[tr], y[tr], x[te], v) - y[te]) ** 2)
    return grid[int(loss.argmin())]


def blend(xtr, ytr, x, a):
    kx, ky = iso_half(xtr, ytr)
    return a * np.interp(x, kx, ky) + (1 - a) * x


def shrink(xtr, ytr, x, m):
    kx, ky = iso_raw(xtr, ytr, m)
    return np.interp(x, kx, ky)


def one_seed(d, label):
    r, q = ad.read_h5ad(f"{d}/ref.h5ad"), ad.read_h5ad(f"{d}/query.h5ad")
    cls = sorted(set(r.obs[label].astype(str)))
    codes = np.array([cls.index(v) for v in r.obs[label].astype(str)])
    R, Q = np.asarray(r.obsm["latent"], float), np.asarray(q.obsm["latent"], float)
    ix, dd = knn(R, Q, KP)
    best, w, vs = score(codes[ix], dd, len(cls))
    ok = np.array(cls)[best] == q.obs[label].astype(str).values
    raw = w[np.arange(len(Q)), best]
    x, y = held_out(R, codes, r.obs["batch"].astype(str).values, len(cls))
    cur = np.interp(raw, *iso_half(x, y))
    written = ad.read_h5ad(f"{d}/off/adata.h5ad").obs[f"{label}_transfer_confidence"].values
    a = cv(x, y, np.linspace(0, 1, 11), blend)
    m = cv(x, y, np.array([0, 0.5, 1, 2, 5, 10, 20, 50]), shrink)
    scores = {"current": cur, "vote": vs, "raw": raw, "cv_blend": blend(x, y, raw, a),
              "cv_shrink": shrink(x, y, raw, m)}
    figs = {k: (ece(v, ok), ece(v, ok, 15), ece_equal_mass(v, ok), ece_floor(v),
                float(np.mean((v - ok) ** 2))) for k, v in scores.items()}
    info = dict(diff=float(np.abs(written - cur).max()), n_calib=len(x), calib_acc=y.mean(),
                calib_wrong=int((1 - y).sum()), acc=ok.mean(), a=a, m=m)
    return figs, info


def main(out, ds, label):
    rows = [one_seed(d, label) for d in sorted(glob.glob(f"{out}/{ds}/seed*/full"))]
    print(f"{ds}: {len(rows)} seeds; python vs scalex confidence max |diff| "
          f"{max(i['diff'] for _, i in rows):.1e}")
    for k in ("n_calib", "calib_acc", "calib_wrong", "acc", "a", "m"):
        print("  %-11s %s" % (k, " ".join("%.3f" % i[k] for _, i in rows)))
    print("  %-10s %-13s %-13s %-13s %-13s %-15s %s" % ("score", "ECE10", "ECE15", "ECE eq-mass",
                                                       "ECE10 floor", "Brier", "ECE10 per seed"))
    for k in rows[0][0]:
        v = np.array([f[k] for f, _ in rows])
        sd = v.std(0, ddof=1) if len(v) > 1 else np.zeros(v.shape[1])
        print("  %-10s %s %s" % (k, " ".join("%.3f±%.3f  " % (a, b) if j < 4 else "%.4f±%.4f" % (a, b)
                                             for j, (a, b) in enumerate(zip(v.mean(0), sd))),
                                 " ".join("%.3f" % e for e in v[:, 0])))


if __name__ == "__main__":
    main(*sys.argv[1:4])
