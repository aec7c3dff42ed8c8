#!/usr/bin/python3
"""unknown_eval.py — how the mapping score's scale was chosen (issue 16): a bench/trust_eval.sh
helper, no part of the product. It redoes scalex's mapping score in numpy from the latents of
trust_eval runs at two training budgets, for two scales, and prints the Unknown shares each
gives at several thresholds, so that one default can be checked against both budgets.

Usage: /usr/bin/python3 bench/unknown_eval.py DATASET LABEL NAME=OUTDIR [NAME=OUTDIR ...]
  e.g. bench/unknown_eval.py cellbench_3cl cell_line 3000=out3000 default=outdefault
  Each OUTDIR is a bench/trust_eval.sh output folder; OUTDIR/DATASET/seed*/project/adata.h5ad
  (the trained reference and the projected query) are read; every query type is left out of
  the reference in turn, as trust_eval.sh does.

Both scores: the query cell's mean log distance to its 5 nearest reference cells, less the
location of its label (median log distance of held-out reference cells of that label to their
5 nearest: leave-one-batch-out with several batches, else leave-one-out), over a scale; the
query's median z, when positive, subtracted; score = 1 - Phi(z). Unknown: score < threshold
or calibrated confidence < 0.4 (and at 0.01: confidence thresholds 0, 0.3, 0.5). The scales:
  spread  1.4826 x MAD of the label's held-out log distances (scalex up to this change)
  gap     (median log distance of held-out cells of OTHER labels to the label's cells - the
          location) / (2 x 2.326): halfway to the other labels scores 0.01 (scalex now)
Printed first, the geometry in log distance (medians, means over left-out types and seeds): the
held-out reference cells' location and spread, where other labels' cells lie, and the query's
known and left-out cells. Then per scale and threshold: left-out cells Unknown (mean over types and seeds), known
cells Unknown in the same runs, all query cells Unknown with the full reference, and the AUROC
of 1 - score for the left-out type.
"""
import glob
import sys

import anndata as ad
import numpy as np
from scipy.stats import norm

from calib_eval import K, KP, held_out, iso_half, knn, score
from trust_eval import auroc

GAP_Z = 2 * norm.isf(0.01)


def robust(v):
    loc = np.median(v)
    return loc, max(1.4826 * np.median(np.abs(v - loc)), 0.1)


def groups(batch):
    """(pool mask, held-out mask) pairs: leave-one-batch-out, or one leave-one-out group."""
    ub = np.unique(batch)
    if len(ub) >= 2:
        return [(batch != b, batch == b) for b in ub]
    return [(np.ones(len(batch), bool), np.ones(len(batch), bool))]


def held_dists(R, codes, batch):
    """log mean 5-NN distance and class of held-out reference cells."""
    if len(np.unique(batch)) < 2:
        _, d = knn(R, R, K + 1)
        return np.log(d[:, 1:].mean(1)), codes
    ld, cs = [], []
    for pm, cm in groups(batch):
        _, d = knn(R[pm], R[cm], K)
        ld.append(np.log(d.mean(1)))
        cs.append(codes[cm])
    return np.concatenate(ld), np.concatenate(cs)


def other_median(R, codes, batch, k):
    """median log mean 5-NN distance of held-out cells of other classes to class k's cells."""
    v = []
    for pm, cm in groups(batch):
        pool, cells = np.where(pm & (codes == k))[0], np.where(cm & (codes != k))[0]
        if len(pool) >= K and len(cells):
            v.append(np.log(knn(R[pool], R[cells], K)[1].mean(1)))
    v = np.concatenate(v) if v else np.array([])
    return np.median(v) if len(v) >= 5 else np.nan


def scales(R, codes, batch, nc):
    """per class: location, spread scale, gap scale (sx_transfer_calib.c's fallbacks)."""
    lh, hc = held_dists(R, codes, batch)
    glob_ = robust(lh)
    loc, spread, gap = np.zeros(nc), np.zeros(nc), np.full(nc, np.nan)
    for k in range(nc):
        own = (hc == k).sum() >= 5
        loc[k], spread[k] = robust(lh[hc == k]) if own else glob_
        b = other_median(R, codes, batch, k)
        if own and np.isfinite(b):
            gap[k] = max((b - loc[k]) / GAP_Z, 0.1)
    gap[~np.isfinite(gap)] = np.nanmedian(gap) if np.isfinite(gap).any() else spread[~np.isfinite(gap)]
    return loc, spread, gap


def one_run(a, label, left=None):
    """per scale: (z of every query cell, confidence, left-out mask)."""
    proj, lab = a.obs["projection"].astype(str).values, a.obs[label].astype(str).values
    ref, q = (proj == "reference") & (lab != (left or "\0")), proj == "query"
    Z = np.asarray(a.obsm["latent"], float)
    R, Q, batch = Z[ref], Z[q], a.obs["batch"].astype(str).values[ref]
    cls = sorted(set(lab[ref]))
    codes = np.array([cls.index(v) for v in lab[ref]])
    ix, dd = knn(R, Q, KP)
    best, w, _ = score(codes[ix], dd, len(cls))
    conf = np.interp(w[np.arange(len(Q)), best], *iso_half(*held_out(R, codes, batch, len(cls))))
    loc, spread, gap = scales(R, codes, batch, len(cls))
    lq = np.log(dd[:, :K].mean(1))
    pos = lab[q] == left
    # the geometry behind the two scales, in log distance (medians over the chosen labels)
    geo = (np.median(loc[best]), np.median(spread[best]), np.median(loc[best] + GAP_Z * gap[best]),
           np.median(lq[~pos]), np.median(lq[pos]) if pos.any() else np.nan)
    out = {"geometry": geo}
    for name, s in (("spread", spread), ("gap", gap)):
        z = (lq - loc[best]) / s[best]
        out[name] = z - max(np.median(z), 0)
    return out, conf, lab[q] == left


def main(ds, label, *runs):
    thr = (0.02, 0.01, 0.005, 0.002)
    for run in runs:
        name, out = run.split("=", 1)
        files = sorted(glob.glob(f"{out}/{ds}/seed*/project/adata.h5ad"))
        res = {}  # scale -> threshold -> lists of per-seed figures
        for f in files:
            a = ad.read_h5ad(f)
            types = sorted(set(a.obs[label].astype(str).values[a.obs["projection"].astype(str).values == "query"]))
            full, fconf, _ = one_run(a, label)
            loos = [one_run(a, label, t) for t in types]
            res.setdefault("geometry", []).append(np.nanmean([z["geometry"] for z, _, _ in loos], 0))
            for sc in ("spread", "gap"):
                r = res.setdefault(sc, {})
                r.setdefault("auroc", []).append(np.mean([auroc(z[sc], p) for z, _, p in loos]))
                for t, tc in [(t, 0.4) for t in thr] + [(0.01, tc) for tc in (0, 0.3, 0.5)]:
                    u = lambda z, c: (norm.sf(z) < t) | (c < tc)
                    r.setdefault((t, tc), []).append((np.mean([u(z[sc], c)[p].mean() for z, c, p in loos]),
                                                np.mean([u(z[sc], c)[~p].mean() for z, c, p in loos]),
                                                u(full[sc], fconf).mean()))
        print(f"{ds} ({name}, {len(files)} seeds): Unknown shares, mean ± SD over seeds")
        g = np.mean(res.pop("geometry"), 0)
        print("  log distances: held-out reference cells %.2f (spread %.2f), other labels' cells %.2f;"
              " query: known cells %.2f, left-out cells %.2f" % tuple(g))
        for sc, r in res.items():
            print("  %-6s AUROC %.3f±%.3f" % (sc, np.mean(r["auroc"]), np.std(r["auroc"], ddof=1)))
            for t, tc in [k for k in r if k != "auroc"]:
                v = np.array(r[(t, tc)])
                m, s = v.mean(0), v.std(0, ddof=1)
                print("    score < %-6g conf. < %.1f  left-out %.3f±%.3f  known %.3f±%.3f  full reference "
                      "%.3f±%.3f" % (t, tc, m[0], s[0], m[1], s[1], m[2], s[2]))


if __name__ == "__main__":
    main(*sys.argv[1:])
