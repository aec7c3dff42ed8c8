#!/usr/bin/env bash
# Every .h5ad under $SX_SHARED/data must be summarised by `scalex inspect --json` exactly as
# python3-anndata sees it (n_obs, n_vars, nnz, sum of X within rel 1e-6, obs/var categories
# with counts); the LZF-compressed file must fail cleanly with the unsupported-filter message.
set -u
: "${SX_SHARED:?run through ctest}" "${SCALEX_BIN:?}" "${SX_PYTHON:?}" "${SX_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
pairs=()
while IFS= read -r f; do
    n=$((n + 1))
    if "$SX_PYTHON" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); \
import itertools; ids=[]; f.visititems(lambda k,o: ids.append(o.compression) if hasattr(o,'compression') else None); \
sys.exit(0 if 'lzf' in ids else 1)" "$f"; then
        # LZF: plain libhdf5 cannot decode it; expect a clean error naming file, element, filter
        "$SCALEX_BIN" inspect --json "$f" >"$tmp/out.json" 2>"$tmp/err.txt"
        rc=$?
        if [ $rc -ne 1 ] || ! grep -q "filter 32000 (lzf)" "$tmp/err.txt" ||
           ! grep -q "$(basename "$f")" "$tmp/err.txt" || ! grep -q "compression=\"gzip\"" "$tmp/err.txt"; then
            echo "FAIL $f: expected exit 1 with the lzf message, got $rc: $(cat "$tmp/err.txt")"
            fail=1
        else
            echo "ok   $f: clean error: $(head -c 160 "$tmp/err.txt")..."
        fi
        # python (h5py ships LZF) reads it: its truth must match our reading of the gzip twin
        twin="${f%.h5ad}_gzip.h5ad"
        if [ -f "$twin" ]; then
            if "$SCALEX_BIN" inspect --json "$twin" >"$tmp/twin.json" 2>/dev/null; then
                pairs+=("$f" "$tmp/twin.json")
            else
                echo "FAIL $f: cannot inspect its gzip twin"; fail=1
            fi
        fi
        continue
    fi
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
