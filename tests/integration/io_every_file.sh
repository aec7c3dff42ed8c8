#!/usr/bin/env bash
# Every file under $SX_SHARED/data meets `scalex inspect`: a data file in a supported format
# reads, and its figures are checked against python elsewhere (io_inspect_h5ad.sh for every
# .h5ad, io_inspect_10x.sh for the 10x folders and .h5 files and count tables, by path:
# this test fails when a readable file is checked by neither, so a file added to shared/
# cannot slip past the value checks); anything else (R objects, metadata tables, a 10x
# folder's barcodes/features on their own) is refused with exit 1..127 and a message that
# names the file, never a signal, a hang or a sanitizer report. Documentation and the
# scripts that built the data (README.md, PROVENANCE.md, tools/) are not inputs.
set -u
: "${SX_SHARED:?run through ctest}" "${SCALEX_BIN:?}" "${SX_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
D="$SX_SHARED/data"
tenx="$SX_SOURCE_DIR/tests/integration/io_inspect_10x.sh"
fail=0
n_read=0
n_refused=0
while IFS= read -r f; do
    rel=${f#"$D"/}
    case "$rel" in
    tools/* | */PROVENANCE.md | README.md) continue ;;
    esac
    timeout 300 "$SCALEX_BIN" inspect --json "$f" >"$tmp/out.json" 2>"$tmp/err.txt"
    rc=$?
    if [ "${SX_SANITIZE:-0}" = 1 ] &&
       grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:|UndefinedBehaviorSanitizer' "$tmp/err.txt"; then
        echo "FAIL $rel: sanitizer report:"; head -20 "$tmp/err.txt"; fail=1; continue
    fi
    if [ $rc -eq 0 ]; then
        n_read=$((n_read + 1))
        case "$rel" in
        *.h5ad) checked=1 ;; # io_inspect_h5ad.sh walks every .h5ad
        *) # the file, or for a matrix.mtx the 10x folder it belongs to, is named in
           # io_inspect_10x.sh
            dir=$(dirname "$rel")
            if grep -qF -- "${rel#*/}\"" "$tenx" ||
               { case "$rel" in */matrix.mtx*) true ;; *) false ;; esac &&
                 grep -qF -- "${dir#*/}\"" "$tenx"; }; then
                checked=1
            else
                checked=0
            fi ;;
        esac
        if [ $checked = 1 ]; then
            echo "ok   read    $rel"
        else
            echo "FAIL $rel: reads, but no test compares its figures with python's"; fail=1
        fi
    elif [ $rc -ge 124 ]; then
        echo "FAIL $rel: exit $rc (timeout or signal): $(tail -c 300 "$tmp/err.txt")"; fail=1
    elif ! grep -qF -- "$f" "$tmp/err.txt" || [ ! -s "$tmp/err.txt" ]; then
        echo "FAIL $rel: exit $rc without a message naming the file: $(cat "$tmp/err.txt")"; fail=1
    else
        n_refused=$((n_refused + 1))
        echo "ok   refused $rel: $(sed "s|$D/||" "$tmp/err.txt" | head -c 150)"
    fi
done < <(find "$D" -type f | sort)
[ $n_read -gt 0 ] || { echo "FAIL: no file read under $D"; fail=1; }
echo "io_every_file: $n_read read, $n_refused refused cleanly"
exit $fail
