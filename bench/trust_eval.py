#!/usr/bin/python3
"""trust_eval.py — the bench/trust_eval.sh helper: splits a projection's output into the
reference and query cells scalex transfer reads (anndata only writes files) and computes the
figures (ECE, AUROC, Unknown rates). No part of the product; every transfer is scalex's.

  split ADATA OUTDIR LABEL [LEFT_OUT]   ref.h5ad (reference cells, LEFT_OUT removed) and
                                        query.h5ad (query cells): obs LABEL + batch, obsm latent
  full SPLITDIR RUN_OFF RUN_ON LABEL    ECE of confidence and of the 5-NN vote share (with each
                                        score's ECE floor, equal-mass ECE and Brier score);
                                        Unknown share with the default thresholds (one JSON line)
  loo SPLITDIR RUN LABEL LEFT_OUT       AUROC of 1 - mapping score and of 1 - vote share for the
                                        left-out type; Unknown shares of left-out / known cells
  summary FILE...                       mean +- SD over seeds of the JSON lines
  rescore OUTDIR DATASET LABEL          full's figures again from the saved runs of every seed
                                        (one JSON line per seed, with "seed")
  rates OUTDIR LABEL DATASET TM TC     per left-out type: Unknown shares at thresholds TM, TC
  grid OUTDIR LABEL DATASET             Unknown shares (left-out, known in the leave-one-out
                                        runs; known with the full reference) for threshold
                                        pairs: how the defaults were chosen
"""
import json
import sys

import anndata as ad
import numpy as np
from scipy.stats import rankdata


def split(path, out, label, left_out=None):
    a = ad.read_h5ad(path)
    proj = a.obs["projection"].astype(str).values
    lab = a.obs[label].astype(str).values
    ref = (proj == "reference") & (lab != (left_out or "\0"))
    qry = proj == "query"
    for name, sel in (("ref.h5ad", ref), ("query.h5ad", qry)):
        obs = a.obs.loc[sel, [label, "batch"]].copy()
        for c in obs.columns:
            obs[c] = obs[c].astype(str).astype("category")
        ad.AnnData(obs=obs, obsm={"latent": np.asarray(a.obsm["latent"])[sel]}).write_h5ad(f"{out}/{name}")


def vote_share(d, label, k=5):
    """SCALEX's score: the share of the 5 nearest reference cells that vote for the winner."""
    r, q = ad.read_h5ad(f"{d}/ref.h5ad"), ad.read_h5ad(f"{d}/query.h5ad")
    R, Q = np.asarray(r.obsm["latent"], float), np.asarray(q.obsm["latent"], float)
    d2 = (Q * Q).sum(1)[:, None] - 2 * Q @ R.T + (R * R).sum(1)[None, :]
    nb = np.argsort(d2, axis=1, kind="stable")[:, :k]
    rl = r.obs[label].astype(str).values[nb]
    return np.array([max(np.unique(row, return_counts=True)[1]) / k for row in rl])


def ece(conf, correct, bins=10):
    """Expected calibration error: equal-width bins, |accuracy - mean confidence| weighted."""
    b = np.minimum((conf * bins).astype(int), bins - 1)
    return sum(abs(correct[b == i].mean() - conf[b == i].mean()) * (b == i).mean()
               for i in range(bins) if (b == i).any())


def ece_floor(conf, bins=10, draws=400, measure=None):
    """The ECE a perfectly calibrated score with these values still shows on this many cells
    (outcomes drawn as Bernoulli(conf); fixed seed): the binned estimator's bias, larger for a
    score of many distinct values than for the vote share's three (0.6, 0.8, 1.0).
    measure: the estimator (ece, the default, or ece_equal_mass)."""
    rng = np.random.default_rng(0)
    f = measure or ece
    return float(np.mean([f(conf, rng.random(len(conf)) < conf, bins) for _ in range(draws)]))


def ece_equal_mass(conf, correct, bins=10):
    """ECE over bins of equal cell counts (ties kept in sorted order), not equal width."""
    parts = np.array_split(np.argsort(conf, kind="stable"), bins)
    return sum(abs(correct[p].mean() - conf[p].mean()) * len(p) / len(conf) for p in parts if len(p))


def auroc(score, pos):
    """Mann-Whitney AUROC of score for pos (ties count one half)."""
    r = rankdata(score)
    n1, n0 = pos.sum(), (~pos).sum()
    return (r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0) if n1 and n0 else float("nan")


def obs(run, label):
    a = ad.read_h5ad(f"{run}/adata.h5ad")
    return (a.obs[f"{label}_transfer"].astype(str).values,
            a.obs[f"{label}_transfer_confidence"].values.astype(float),
            a.obs[f"{label}_mapping_score"].values.astype(float),
            a.obs[label].astype(str).values)


def full(d, run_off, run_on, label):
    print(json.dumps(full_figures(d, run_off, run_on, label)))


def full_figures(d, run_off, run_on, label):
    pred, conf, ms, truth = obs(run_off, label)
    ok = pred == truth
    vs = vote_share(d, label)
    on = obs(run_on, label)[0]
    return {"accuracy": ok.mean(), "ece_confidence": ece(conf, ok),
            "ece_vote_share": ece(vs, ok), "unknown_known": (on == "Unknown").mean(),
            "ece_floor_confidence": ece_floor(conf), "ece_floor_vote_share": ece_floor(vs),
            "ece_eqmass_confidence": ece_equal_mass(conf, ok),
            "ece_eqmass_vote_share": ece_equal_mass(vs, ok),
            "ece_eqmass_floor_confidence": ece_floor(conf, measure=ece_equal_mass),
            "ece_eqmass_floor_vote_share": ece_floor(vs, measure=ece_equal_mass),
            "brier_confidence": float(np.mean((conf - ok) ** 2)),
            "brier_vote_share": float(np.mean((vs - ok) ** 2)),
            "mean_confidence": conf.mean(), "mean_vote_share": vs.mean()}


def rescore(out, ds, label):
    """full() again on the saved runs of OUT/DS/seed*/full (figures added after a run)."""
    import glob
    import re
    for d in sorted(glob.glob(f"{out}/{ds}/seed*/full"), key=lambda p: int(re.findall(r"seed(\d+)", p)[-1])):
        seed = int(re.findall(r"seed(\d+)", d)[-1])
        print(json.dumps({"seed": seed, **full_figures(d, f"{d}/off", f"{d}/on", label)}))


def loo(d, run, label, left_out):
    pred, conf, ms, truth = obs(run, label)
    pos = truth == left_out
    vs = vote_share(d, label)
    unk = pred == "Unknown"
    print(json.dumps({"type": left_out, "n_left_out": int(pos.sum()),
                      "auroc_mapping": auroc(1 - ms, pos), "auroc_vote": auroc(1 - vs, pos),
                      "auroc_confidence": auroc(1 - conf, pos),
                      "unknown_left_out": unk[pos].mean(), "unknown_known": unk[~pos].mean()}))


def summary(files):
    rows = [json.loads(l) for f in files for l in open(f) if l.strip()]
    groups = {}
    for r in rows:
        groups.setdefault(r.get("type", "all"), []).append(r)
    for g, rs in sorted(groups.items()):
        keys = [k for k in rs[0] if isinstance(rs[0][k], float)]
        figs = "  ".join("%s %.3f±%.3f" % (k, np.nanmean([r[k] for r in rs]),
                                            np.nanstd([r[k] for r in rs], ddof=1) if len(rs) > 1 else 0)
                         for k in keys)
        print("  %-16s n=%d  %s" % (g, len(rs), figs))
    if "all" not in groups and rows:
        for k in ("auroc_mapping", "auroc_vote", "unknown_left_out", "unknown_known"):
            per_seed = {}
            for r in rows:
                per_seed.setdefault(r["seed"], []).append(r[k])
            means = [np.nanmean(v) for v in per_seed.values()]
            print("  %-16s mean over types: %.3f±%.3f (SD over %d seeds)" %
                  (k, np.mean(means), np.std(means, ddof=1) if len(means) > 1 else 0, len(means)))


def loo_scores(out, label, ds):
    import glob
    loo_runs = sorted(glob.glob(f"{out}/{ds}/seed*/loo_*/run/adata.h5ad"))
    full_runs = sorted(glob.glob(f"{out}/{ds}/seed*/full/off/adata.h5ad"))
    L = []
    for f in loo_runs:
        left = f.split("/")[-3][4:]
        a = ad.read_h5ad(f)
        t = a.obs[label].astype(str).str.replace(r"[^A-Za-z0-9_]", "_", regex=True).values
        L.append((t == left, a.obs[f"{label}_mapping_score"].values,
                  a.obs[f"{label}_transfer_confidence"].values, left))
    return loo_runs, full_runs, L


def rates(out, label, ds, tm, tc):
    tm, tc = float(tm), float(tc)
    _, _, L = loo_scores(out, label, ds)
    by = {}
    for p, ms, c, left in L:
        u = (ms < tm) | (c < tc)
        by.setdefault(left, []).append((u[p].mean(), u[~p].mean()))
    print(f"{ds}: Unknown at min_mapping_score {tm}, min_confidence {tc} (mean±SD over seeds)")
    for t, v in sorted(by.items()):
        v = np.array(v)
        sd = v.std(0, ddof=1) if len(v) > 1 else np.zeros(2)
        print("  %-12s left-out %.3f±%.3f  known %.3f±%.3f  (%d seeds)" % (t, v[0:, 0].mean(), sd[0], v[:, 1].mean(), sd[1], len(v)))


def grid(out, label, ds):
    loo_runs, full_runs, L = loo_scores(out, label, ds)
    F = [ad.read_h5ad(f).obs for f in full_runs]
    print(f"{ds}: Unknown shares over {len(loo_runs)} leave-one-out runs / {len(full_runs)} full runs")
    print("  min_mapping min_conf   left-out  known(loo)  known(full)")
    for tm in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05):
        for tc in (0.0, 0.3, 0.4, 0.5):
            lo = np.mean([((ms < tm) | (c < tc))[p].mean() for p, ms, c, _ in L])
            kn = np.mean([((ms < tm) | (c < tc))[~p].mean() for p, ms, c, _ in L])
            fu = np.mean([((o[f"{label}_mapping_score"].values < tm) |
                           (o[f"{label}_transfer_confidence"].values < tc)).mean() for o in F])
            print("  %11.3f %8.2f   %8.3f  %10.3f  %11.3f" % (tm, tc, lo, kn, fu))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"split": split, "full": full, "loo": loo, "summary": lambda *f: summary(f), "rescore": rescore, "grid": grid, "rates": rates}[cmd](*args)
