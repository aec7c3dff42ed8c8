#!/usr/bin/env bash
# Every .h5ad under $SX_SHARED/data goes through `scalex convert` and must open in
# python3-anndata 0.8 with identical X, obs, var and obsm (tests/interop/check_roundtrip.py).
# The LZF-compressed anndata 0.7 file included. An unreadable input (a non-HDF5 file, a
# truncated one) must exit 1 with a message, never a signal.
set -u
: "${SX_SHARED:?run through ctest}" "${SCALEX_BIN:?}" "${SX_PYTHON:?}" "${SX_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
pairs=()
while IFS= read -r f; do
    n=$((n + 1))
    out="$tmp/out_$n.h5ad"
    "$SCALEX_BIN" convert "$f" -o "$out" 2>"$tmp/err.txt"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL $f: convert exited $rc: $(cat "$tmp/err.txt")"; fail=1; continue
    fi
    ls "$tmp" | grep -q '\.tmp-' && { echo "FAIL $f: temporary file left behind"; fail=1; }
    pairs+=("$f" "$out")
done < <(find "$SX_SHARED/data" -name '*.h5ad' | sort)
[ "$n" -gt 0 ] || { echo "no .h5ad found"; exit 1; }
"$SX_PYTHON" "$SX_SOURCE_DIR/tests/interop/check_roundtrip.py" "${pairs[@]}" || fail=1
# not an HDF5 file / truncated file: exit status 1 and a message naming the file
printf 'this is not hdf5\n' >"$tmp/bad.h5ad"
"$SCALEX_BIN" convert "$tmp/bad.h5ad" -o "$tmp/x.h5ad" 2>"$tmp/err.txt"
rc=$?
{ [ $rc -eq 1 ] && grep -q "bad.h5ad" "$tmp/err.txt"; } ||
    { echo "FAIL: non-HDF5 input gave rc $rc: $(cat "$tmp/err.txt")"; fail=1; }
src=$(find "$SX_SHARED/data" -name 'query_3pv1.h5ad' | head -1)
head -c 100000 "$src" >"$tmp/trunc.h5ad"
"$SCALEX_BIN" convert "$tmp/trunc.h5ad" -o "$tmp/x.h5ad" 2>"$tmp/err.txt"
rc=$?
{ [ $rc -eq 1 ] && grep -q "trunc.h5ad" "$tmp/err.txt"; } ||
    { echo "FAIL: truncated input gave rc $rc: $(cat "$tmp/err.txt")"; fail=1; }
[ -e "$tmp/x.h5ad" ] && { echo "FAIL: output written for a failed input"; fail=1; }
echo "$n files converted and checked"
exit $fail
