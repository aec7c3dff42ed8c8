#!/usr/bin/env bash
# Gene matching that does not fail silently (issue 16), against independent truth.
# From the real PBMC 3pv1 query (python3-anndata) we write four queries holding the same
# counts under other gene names: symbols (the baseline), Ensembl-style ids with the symbols
# in a var column (plus a constant feature_types column that must be ignored), mouse-cased
# symbols, and opaque ids with a gene table. Each is projected onto SCALEX's own reference
# (shared/golden/scalex_outdir/ref, human symbols). Then:
#  - every query gives the symbol query's matrix and latent (to 1e-6);
#  - result.json's qc names the rule that matched, with the count python computes;
#  - the gene table works as --gene_table FILE and as genes.tsv in the reference folder;
#  - a query sharing too few genes fails with exit code 5 and a message that says what to do.
# (The ids are stand-ins: Ensembl-shaped, with versions; nothing here looks them up.)
set -euo pipefail
: "${SCALEX_BIN:?run through ctest}" "${SX_SHARED:?}" "${SX_PYTHON:?}"
Q="$SX_SHARED/data/pbmc_3tech_symphony/query_3pv1.h5ad"
REF="$SX_SHARED/golden/scalex_outdir/ref"
T=$(mktemp -d "${TMPDIR:-/tmp}/sxgm-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$SX_PYTHON" - "$Q" "$T" <<'PY'
import sys, anndata as ad, numpy as np, pandas as pd
q, T = ad.read_h5ad(sys.argv[1]), sys.argv[2]
# MT-/ERCC genes are dropped here: the cell filter recognises them by their (symbol) names,
# so they would otherwise count in one query's normalisation and not in another's
q = q[:, [not g.upper().startswith(("MT-", "ERCC")) for g in q.var_names]].copy()
sym = list(q.var_names)
q.write_h5ad(f"{T}/sym.h5ad")
e = q.copy()
e.var_names = ["ENSG%011d.%d" % (100000 + i, 1 + i % 7) for i in range(len(sym))]
e.var["feature_types"] = pd.Categorical(["Gene Expression"] * len(sym))
e.var["gene_symbols"] = sym
e.write_h5ad(f"{T}/ens.h5ad")
m = q.copy()
m.var_names = [g[0].upper() + g[1:].lower() for g in sym]
m.write_h5ad(f"{T}/mouse.h5ad")
t = q.copy()
t.var_names = ["q%05d" % i for i in range(len(sym))]
t.write_h5ad(f"{T}/table.h5ad")
with open(f"{T}/table.tsv", "w") as f:
    f.write("# query id -> reference gene\nquery\treference\n")
    for i, g in enumerate(sym):
        f.write("q%05d\t%s\n" % (i, g))
# too few genes: 300 symbols of the 1467 (20%)
few = q[:, [i for i in range(len(sym))][:300]].copy()
few.write_h5ad(f"{T}/few.h5ad")
PY

mkdir "$T/refdir"
for f in "$REF"/*; do ln -s "$f" "$T/refdir/"; done
cp "$T/table.tsv" "$T/refdir/genes.tsv"

run() { # run NAME QUERY REFDIR [args...]
    local name=$1 q=$2 ref=$3; shift 3
    "$SCALEX_BIN" project --data_list "$q" --projection "$ref" --min_features 100 --eval --repeat \
        --ignore_umap --label cell_type --threads 1 -o "$T/$name" "$@" 2>"$T/$name.log" ||
        { tail -5 "$T/$name.log"; fail "project $name"; }
}
run sym "$T/sym.h5ad" "$REF"
run ens "$T/ens.h5ad" "$REF"
run mouse "$T/mouse.h5ad" "$REF"
run table "$T/table.h5ad" "$REF" --gene_table "$T/table.tsv"
run tsv "$T/table.h5ad" "$T/refdir"

set +e
"$SCALEX_BIN" project --data_list "$T/few.h5ad" --projection "$REF" --min_features 10 --eval \
    --repeat --ignore_umap --threads 1 -o "$T/few" 2>"$T/few.log"
rc=$?
set -e
[ $rc = 5 ] || { cat "$T/few.log"; fail "too few genes: exit $rc, want 5"; }
grep -q "What to do" "$T/few.log" && grep -q "gene table" "$T/few.log" && grep -q "by rule: var_names" "$T/few.log" ||
    { cat "$T/few.log"; fail "too few genes: the message does not say what to do"; }
grep "EGENES" "$T/few.log" | grep -q "$T" && fail "a path in the message"

"$SX_PYTHON" - "$T" "$REF" <<'PY'
import sys, json, h5py, anndata as ad, numpy as np
T, REF = sys.argv[1], sys.argv[2]
base = ad.read_h5ad(f"{T}/sym.h5ad")
ref_genes = list(ad.read_h5ad(f"{T}/sym/adata.h5ad").var_names)
want = sum(g in set(base.var_names) for g in ref_genes)   # reference genes the query has
s = ad.read_h5ad(f"{T}/sym/adata.h5ad")
expect_rule = {"sym": "var_names", "ens": "gene_symbols", "mouse": "case_insensitive",
               "table": "gene_table", "tsv": "gene_table"}
for name, rule in expect_rule.items():
    o = ad.read_h5ad(f"{T}/{name}/adata.h5ad")
    assert list(o.obs_names) == list(s.obs_names), name
    assert list(o.var_names) == ref_genes, name
    dx = np.abs(o.X.toarray() - s.X.toarray()).max()
    dl = np.abs(np.asarray(o.obsm["latent"]) - np.asarray(s.obsm["latent"])).max()
    assert dx <= 1e-6 and dl <= 1e-6, (name, dx, dl)
    qc = json.load(open(f"{T}/{name}/result.json"))["qc"]
    g = qc["genes"]
    assert g["reference"] == len(ref_genes) and g["matched"] == want, (name, g)
    # mouse casing leaves some names as they were (e.g. C1orf56): those match by name
    exact = sum(g0[0].upper() + g0[1:].lower() == g0 for g0 in ref_genes) if name == "mouse" else 0
    assert g["by_rule"][rule] == want - exact, (name, g["by_rule"])
    assert exact == 0 or g["by_rule"]["var_names"] == exact, (name, g["by_rule"])
    assert sum(g["by_rule"].values()) == want, (name, g["by_rule"])
    assert "feature_types" not in g["by_rule"], g["by_rule"]
    assert g["ambiguous"] == [], g["ambiguous"]
    if name == "mouse":
        assert any(w["code"] == "case_insensitive_genes" for w in qc["warnings"]), qc["warnings"]
    assert qc["cells"]["mapped"] == o.n_obs and qc["cells"]["query"] == base.n_obs, qc["cells"]
    assert qc["batches"] == sorted(set(base.obs["batch"].astype(str))), qc["batches"]
    # per-label counts against the transferred column anndata reads
    counts = o.obs["cell_type_transfer"].value_counts()
    got = {r["label"]: r["cells"] for r in qc["labels"]["cell_type"]}
    assert got == {k: int(v) for k, v in counts.items() if v}, (got, counts)
    conf = o.obs.groupby("cell_type_transfer", observed=True)["cell_type_transfer_confidence"].mean()
    for r in qc["labels"]["cell_type"]:
        assert abs(r["mean_confidence"] - conf[r["label"]]) < 1e-5, r
    if "cell_type_mapping_score" in o.obs:   # contract 1 columns, when label transfer writes them
        ms = np.asarray(o.obs["cell_type_mapping_score"], dtype=float)
        assert abs(qc["mapping_score"]["mean"] - ms.mean()) < 1e-5
        for p, v in qc["mapping_score"]["quantiles"].items():
            assert abs(v - np.percentile(ms, float(p))) < 1e-5, (p, v)
    else:
        assert "mapping_score" not in qc and "unknown_fraction" not in qc
    print("pipeline_genematch: %-5s %s matched %d of %d, max |dX| %.1e, |dlatent| %.1e"
          % (name, rule, g["matched"], g["reference"], dx, dl))
PY
[ -s "$T/ens/qc.png" ] || fail "no qc.png"
grep -q "QC: 1[0-9]* of 1467 reference genes matched (gene_symbols" "$T/ens/log.txt" || fail "QC paragraph in the log"
echo "pipeline_genematch: ok"
