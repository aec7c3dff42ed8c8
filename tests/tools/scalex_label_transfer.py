"""SCALEX's label_transfer, restated without scikit-learn (Debian's python3 here has none).

SCALEX (scalex/function.py, 1.0.7) transfers labels with
    KNeighborsClassifier().fit(ref.obsm['latent'], ref.obs[label]).predict(query.obsm['latent'])
i.e. scikit-learn's defaults: 5 neighbours, uniform weights, Euclidean distance (exact, brute
force on a latent this small). predict() takes the most frequent label among the 5; on a tie
scipy's mode returns the smallest class index, the classes being sorted (np.unique), so the
lexicographically smallest of the tied labels wins.

scalex_truth(proj_h5ad, label) applies it to a projection SCALEX wrote (reference rows are
obs['projection'] == 'reference', query rows 'query') and returns {query cell: label}.
"""
import anndata as ad
import numpy as np


def knn_predict(ref_lat, ref_lab, q_lat, k=5):
    classes = np.unique(ref_lab)
    codes = np.searchsorted(classes, ref_lab)
    d2 = ((q_lat[:, None, :] - ref_lat[None, :, :]) ** 2).sum(-1)
    nn = np.argsort(d2, axis=1, kind="stable")[:, :k]
    out = []
    for row in codes[nn]:
        counts = np.bincount(row, minlength=len(classes))
        out.append(classes[int(np.argmax(counts))])  # argmax: first (smallest) on a tie
    return np.array(out)


def scalex_truth(proj_h5ad, label):
    a = ad.read_h5ad(proj_h5ad)
    is_ref = np.asarray(a.obs["projection"] == "reference")
    lat = np.asarray(a.obsm["latent"], dtype=np.float64)
    lab = np.asarray(a.obs[label].astype(str))
    pred = knn_predict(lat[is_ref], lab[is_ref], lat[~is_ref])
    return dict(zip(a.obs_names[~is_ref], pred))
