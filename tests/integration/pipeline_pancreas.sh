#!/usr/bin/env bash
# Pancreas human -> mouse: integrate the human reference, project the mouse query with label
# transfer of `Group`, then `scalex transfer` from the reference's adata.h5ad to the projected
# query; anndata reads every output and the transferred labels agree between both routes.
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:?}"
D="$SX_SHARED/data/pancreas_baron_human_mouse_cider"
ITER=200
[ "${SX_SANITIZE:-0}" = 1 ] && ITER=60
T=$(mktemp -d "${TMPDIR:-/tmp}/sxpanc-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$SCALEX_BIN" integrate --data_list "$D/reference_human.h5ad" --max_iteration $ITER --threads 1 \
    -o "$T/ref" 2>"$T/l1" || { tail -5 "$T/l1"; fail integrate; }
"$SCALEX_BIN" project --data_list "$D/query_mouse.h5ad" --projection "$T/ref" --label Group \
    --unknown off --threads 1 -o "$T/proj" 2>"$T/l2" || { tail -5 "$T/l2"; fail project; }
# SCALEX.py form: scalex --data_list ... --projection DIR
"$SCALEX_BIN" --data_list "$D/query_mouse.h5ad" --projection "$T/ref" --ignore_umap \
    --threads 1 -o "$T/proj_py" 2>"$T/l3" || { tail -5 "$T/l3"; fail "SCALEX.py form"; }
"$SCALEX_BIN" transfer --reference "$T/ref/adata.h5ad" --query "$T/proj/adata.h5ad" --label Group \
    --k 5 --unknown off -o "$T/tr" 2>"$T/l4" || { tail -5 "$T/l4"; fail transfer; }
set +e
"$SCALEX_BIN" transfer --reference "$T/ref/adata.h5ad" --query "$D/query_mouse.h5ad" --label Group \
    -o "$T/tr2" 2>"$T/err"; rc=$?
set -e
[ $rc -eq 3 ] && grep -q "obsm 'latent'" "$T/err" || fail "transfer without latent: rc $rc $(cat "$T/err")"

# run-job: a job directory as an executor hands it over
mkdir -p "$T/job"
cat >"$T/job/job.json" <<JSON
{"type": "project", "inputs": ["$D/query_mouse.h5ad"], "reference": "$T/ref",
 "options": {"label": "Group", "ignore_umap": true, "unknown": "off"}, "threads": 1}
JSON
"$SCALEX_BIN" run-job "$T/job" 2>"$T/l5" || { tail -5 "$T/l5"; fail "run-job"; }
grep -q '"state": "succeeded"' "$T/job/status.json" || fail "run-job status: $(cat "$T/job/status.json")"
[ -s "$T/job/progress.json" ] && [ -s "$T/job/labels.csv" ] || fail "run-job outputs"
cmp -s "$T/job/labels.csv" "$T/proj/labels.csv" || fail "run-job labels differ from scalex project"
mkdir -p "$T/badjob"
echo '{"type": "bake", "inputs": []}' >"$T/badjob/job.json"
set +e
"$SCALEX_BIN" run-job "$T/badjob" 2>/dev/null; rc=$?
set -e
[ $rc -eq 2 ] && grep -q '"state": "failed"' "$T/badjob/status.json" || fail "bad job: rc $rc"
mkdir -p "$T/cjob"
cp "$T/job/job.json" "$T/cjob/job.json"
touch "$T/cjob/cancel"
set +e
"$SCALEX_BIN" run-job "$T/cjob" 2>/dev/null; rc=$?
set -e
[ $rc -eq 130 ] && grep -q '"state": "canceled"' "$T/cjob/status.json" || fail "canceled job: rc $rc"

"$SX_PYTHON" - "$T" "$D" <<'PY'
import sys, json, csv
import anndata as ad, numpy as np
T, D = sys.argv[1], sys.argv[2]
ref = ad.read_h5ad(f"{T}/ref/adata.h5ad")
assert ref.obsm["latent"].shape[1] == 10 and "leiden" in ref.obs and "Group" in ref.obs
pj = ad.read_h5ad(f"{T}/proj/adata.h5ad")
qm = (pj.obs["projection"] == "query").values
q = ad.read_h5ad(f"{D}/query_mouse.h5ad")
assert qm.sum() > 0 and qm.sum() <= q.n_obs
pred = pj.obs["Group_transfer"][qm].astype(str).values
truth = q.obs.loc[pj.obs_names[qm], "Group"].astype(str).values
acc = (pred == truth).mean()
res = json.load(open(f"{T}/proj/result.json"))
assert abs(res["metrics"]["accuracy"] - acc) < 1e-4
# macro F1 recomputed independently
cls = sorted(set(truth) | set(pred))
f1 = []
for c in cls:
    tp = ((pred == c) & (truth == c)).sum(); fp = ((pred == c) & (truth != c)).sum(); fn = ((pred != c) & (truth == c)).sum()
    f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
assert abs(res["metrics"]["macro_f1"] - np.mean(f1)) < 1e-4, (res["metrics"]["macro_f1"], np.mean(f1))
# scalex transfer on the projected query (obsm latent) with the reference's adata.h5ad gives
# the same labels as the projection's own transfer (same latent, same kNN vote)
tr = ad.read_h5ad(f"{T}/tr/adata.h5ad")
rows = {r["cell"]: r["label"] for r in csv.DictReader(open(f"{T}/tr/labels.csv"))}
assert len(rows) == pj.n_obs
same = np.mean([rows[c] == p for c, p in zip(pj.obs_names[qm], pred)])
assert same == 1.0, same
py = ad.read_h5ad(f"{T}/proj_py/adata.h5ad")
assert np.array_equal(py.obsm["latent"], pj.obsm["latent"]), "SCALEX.py form differs from project"
print("pipeline_pancreas: ok; mouse accuracy %.3f macro F1 %.3f" % (acc, np.mean(f1)))
PY
