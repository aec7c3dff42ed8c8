#!/usr/bin/env bash
# Per-cell trust of label transfer read back by python3-anndata (issue 16, contract 1): a
# short PBMC reference (3pv2 + 5p), the 3pv1 query projected with two label columns
# (cell_type nests in cell_type_broad), then, from the output alone:
#  - obs <label>_transfer / _transfer_confidence / <label>_mapping_score, obsm
#    <label>_probabilities (float32, rows summing to 1, the chosen class at the confidence,
#    which is the distance-weighted 15-NN probability of the vote's class, redone in numpy),
#    uns <label>_classes (the reference's sorted classes);
#  - every label that is not Unknown = a numpy 5-NN majority vote on obsm latent (ties to the
#    first sorted class, as scikit-learn), and Unknown exactly where the mapping score or the
#    confidence is below the defaults (0.01, 0.4);
#  - cell_type_hierarchy_conflict = the fine answer's coarse class (from the reference's own
#    pairs) differs from the coarse answer; labels.csv holds the same values;
#  - result.json's accuracy / unknown_fraction / accuracy_called and confusion.csv score the
#    vote of every label column (cell_type_broad: cell_type_broad_accuracy ...,
#    confusion_cell_type_broad.csv) against the query's own labels;
#  - --unknown off: SCALEX's plain vote for every cell (no Unknown).
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:?}"
D="$SX_SHARED/data/pbmc_3tech_symphony"
ITER=150
[ "${SX_SANITIZE:-0}" = 1 ] && ITER=40
T=$(mktemp -d "${TMPDIR:-/tmp}/sxtrust-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$SCALEX_BIN" integrate --data_list "$D/reference_3pv2_5p.h5ad" --min_features 100 \
    --max_iteration $ITER --ignore_umap --threads 1 -o "$T/ref" 2>"$T/l1" || { tail -5 "$T/l1"; fail integrate; }
"$SCALEX_BIN" project --data_list "$D/query_3pv1.h5ad" --projection "$T/ref" --min_features 100 \
    --eval --ignore_umap --label cell_type,cell_type_broad --threads 1 -o "$T/on" 2>"$T/l2" ||
    { tail -5 "$T/l2"; fail project; }
"$SCALEX_BIN" project --data_list "$D/query_3pv1.h5ad" --projection "$T/ref" --min_features 100 \
    --eval --ignore_umap --label cell_type --unknown off --threads 1 -o "$T/off" 2>"$T/l3" ||
    { tail -5 "$T/l3"; fail "project --unknown off"; }

"$SX_PYTHON" - "$T" "$D" <<'PY'
import sys, csv, json
import anndata as ad, numpy as np
T, D = sys.argv[1], sys.argv[2]
a = ad.read_h5ad(f"{T}/on/adata.h5ad")
src = ad.read_h5ad(f"{D}/reference_3pv2_5p.h5ad")
proj = a.obs["projection"].astype(str).values
ref, qry = proj == "reference", proj == "query"
lat = np.asarray(a.obsm["latent"], dtype=np.float64)
R, Q = lat[ref], lat[qry]
d2 = ((Q[:, None, :] - R[None, :, :]) ** 2).sum(-1)
nb15 = np.argsort(d2, axis=1, kind="stable")[:, :15]
nb = nb15[:, :5]
dist15 = np.sqrt(np.take_along_axis(d2, nb15, 1))
for label in ("cell_type", "cell_type_broad"):
    rl = a.obs[label].astype(str).values[ref]
    classes = sorted(set(rl))
    assert list(a.uns[f"{label}_classes"]) == classes, (label, a.uns[f"{label}_classes"])
    P = a.obsm[f"{label}_probabilities"]
    assert P.dtype == np.float32 and P.shape == (a.n_obs, len(classes)), (P.dtype, P.shape)
    Pq = P[qry].astype(np.float64)
    assert np.all(np.isnan(P[ref])), "reference rows must be missing"
    assert np.allclose(Pq.sum(1), 1, atol=1e-5) and (Pq >= 0).all(), "rows must sum to 1"
    tr = a.obs[f"{label}_transfer"].astype(str).values[qry]
    conf = a.obs[f"{label}_transfer_confidence"].values[qry].astype(np.float64)
    ms = a.obs[f"{label}_mapping_score"].values[qry].astype(np.float64)
    assert ((conf >= 0) & (conf <= 1)).all() and ((ms >= 0) & (ms <= 1)).all()
    # the vote, recomputed: majority of 5, ties to the first sorted class
    votes = []
    for row in rl[nb]:
        cnt = {c: list(row).count(c) for c in classes}
        votes.append(max(classes, key=lambda c: (cnt[c], -classes.index(c))))
    votes = np.array(votes)
    unk = tr == "Unknown"
    assert (tr[~unk] == votes[~unk]).all(), "a label differs from the 5-NN vote"
    assert (unk == ((ms < 0.01) | (conf < 0.4))).all(), "Unknown is not the default thresholds"
    # result.json scores the vote (SCALEX's label), Unknown apart, for every label column:
    # the first under the plain names and confusion.csv, a further one prefixed with its name
    res = json.load(open(f"{T}/on/result.json"))["metrics"]
    pre, stem = ("", "confusion") if label == "cell_type" else (f"{label}_", f"confusion_{label}")
    truth = a.obs[label].astype(str).values[qry]
    assert abs(res[pre + "accuracy"] - (votes == truth).mean()) < 1e-5, res
    assert abs(res[pre + "unknown_fraction"] - unk.mean()) < 1e-5, res
    assert abs(res[pre + "accuracy_called"] - (votes == truth)[~unk].mean()) < 1e-5, res
    assert res[pre + "n_scored"] == len(truth), res
    cm = list(csv.reader(open(f"{T}/on/{stem}.csv")))
    names = cm[0][1:]
    assert names == sorted(set(truth) | set(votes)), (label, names)
    for row in cm[1:]:
        for j, n in enumerate(row[1:]):
            assert int(n) == ((truth == row[0]) & (votes == names[j])).sum(), (label, row[0], names[j])
    ci = np.array([classes.index(v) for v in votes])
    assert np.allclose(Pq[np.arange(len(ci)), ci], conf, atol=1e-6), "probability != confidence"
    # the default confidence: scikit-learn's KNeighborsClassifier(15, weights="distance")
    # probability of the vote's class, redone here (weights 1 / distance)
    w = 1 / np.maximum(dist15, 1e-300)
    p15 = np.array([w[i][rl[nb15[i]] == votes[i]].sum() / w[i].sum() for i in range(len(votes))])
    assert np.allclose(p15, conf, atol=1e-5), ("confidence != distance-weighted 15-NN", abs(p15 - conf).max())
    print(f"{label}: {len(classes)} classes, {unk.sum()} of {len(tr)} Unknown, "
          f"mean confidence {conf.mean():.3f}, mean mapping score {ms.mean():.3f}")
# hierarchy: every fine class lies in one coarse class in the reference
pairs = dict(zip(src.obs["cell_type"].astype(str), src.obs["cell_type_broad"].astype(str)))
fine = a.obs["cell_type_transfer"].astype(str).values[qry]
coarse = a.obs["cell_type_broad_transfer"].astype(str).values[qry]
want = np.array([f != "Unknown" and c != "Unknown" and pairs[f] != c for f, c in zip(fine, coarse)])
got = a.obs["cell_type_hierarchy_conflict"].values[qry].astype(bool)
assert (got == want).all(), "hierarchy conflicts differ"
print(f"hierarchy conflicts: {got.sum()}")
# labels.csv = the obs values
rows = list(csv.DictReader(open(f"{T}/on/labels.csv")))
assert list(rows[0].keys())[:5] == ["cell", "label", "confidence", "mapping_score", "top3"]
assert "cell_type_broad_mapping_score" in rows[0]
names = list(a.obs_names[qry])
conf = a.obs["cell_type_transfer_confidence"].values[qry]
for i, r in enumerate(rows):
    assert r["cell"] == names[i] and r["label"] == fine[i] and r["cell_type_broad"] == coarse[i]
    assert abs(float(r["confidence"]) - conf[i]) < 1e-4
# --unknown off: the plain vote everywhere
o = ad.read_h5ad(f"{T}/off/adata.h5ad")
oq = o.obs["projection"].astype(str).values == "query"
assert "Unknown" not in set(o.obs["cell_type_transfer"].astype(str).values[oq])
PY
echo "pipeline_trust: ok"
