#!/usr/bin/env bash
# Every .h5ad under $SX_SHARED/data must be summarised by `scalex inspect --json` exactly as
# python3-anndata sees it (n_obs, n_vars, nnz, sum of X within rel 1e-6, obs/var categories
# with counts), the LZF-compressed anndata 0.7 file included (h5py decodes LZF natively).
set -u
: "${SX_SHARED:?run through ctest}" "${SCALEX_BIN:?}" "${SX_PYTHON:?}" "${SX_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
pairs=()
while IFS= read -r f; do
    n=$((n + 1))
    if ! "$SCALEX_BIN" inspect --json "$f" >"$tmp/out_$n.json" 2>"$tmp/err.txt"; then
        echo "FAIL $f: inspect failed: $(cat "$tmp/err.txt")"
        fail=1
        continue
    fi
    pairs+=("$f" "$tmp/out_$n.json")
done < <(find "$SX_SHARED/data" -name '*.h5ad' | sort)
[ "$n" -gt 0 ] || { echo "no .h5ad found under $SX_SHARED/data"; exit 1; }
# python truth for all files in one interpreter (anndata's import is slow)
"$SX_PYTHON" "$SX_SOURCE_DIR/tests/interop/expect_h5ad.py" "${pairs[@]}" || fail=1
# several inputs: a JSON array with one object each
f1=$(find "$SX_SHARED/data" -name 'query_3pv1.h5ad' | head -1)
"$SCALEX_BIN" inspect --json "$f1" "$f1" | "$SX_PYTHON" -c \
  "import json,sys; a=json.load(sys.stdin); sys.exit(0 if isinstance(a,list) and len(a)==2 else 1)" ||
  { echo "FAIL: two inputs should give a JSON array of two objects"; fail=1; }
echo "$n files checked"
exit $fail
