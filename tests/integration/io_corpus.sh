#!/usr/bin/env bash
# Broken-input corpus: every damaged file made by tests/corpus/make_corpus.py must make
# `scalex inspect` and `scalex convert` fail cleanly (exit 1..127, never a signal or a
# hang) with a message that names the problem, or succeed where the case is only a
# warning; under SX_SANITIZE=1 no sanitizer report may appear.
set -u
: "${SX_SHARED:?run through ctest}" "${SCALEX_BIN:?}" "${SX_PYTHON:?}" "${SX_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
corpus="$tmp/corpus"
"$SX_PYTHON" "$SX_SOURCE_DIR/tests/corpus/make_corpus.py" "$SX_SHARED" "$corpus" ||
    { echo "FAIL: could not generate the corpus"; exit 1; }
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
fail=0
n=0

# run NAME EXPECT REGEX CMD...: one command on one case
run() {
    local name=$1 expect=$2 regex=$3
    shift 3
    local err="$tmp/err.txt"
    timeout 120 "$@" >"$tmp/out.txt" 2>"$err"
    local rc=$?
    local what="$name [$(basename "$1") $2]"
    if [ $rc -eq 124 ]; then
        echo "FAIL $what: timed out"; fail=1; return
    fi
    if [ $rc -gt 127 ]; then
        echo "FAIL $what: killed by signal $((rc - 128)): $(tail -c 400 "$err")"; fail=1; return
    fi
    if [ "${SX_SANITIZE:-0}" = 1 ] &&
       grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:|UndefinedBehaviorSanitizer' "$err"; then
        echo "FAIL $what: sanitizer report:"; head -20 "$err"; fail=1; return
    fi
    case $expect in
    error)
        if [ $rc -eq 0 ]; then
            echo "FAIL $what: exit 0, expected an error matching /$regex/"; fail=1; return
        fi
        if ! grep -Eiq -- "$regex" "$err"; then
            echo "FAIL $what: exit $rc but message lacks /$regex/: $(head -c 400 "$err")"
            fail=1; return
        fi ;;
    warn)
        if [ $rc -ne 0 ] || ! grep -Eiq -- "$regex" "$err"; then
            echo "FAIL $what: expected exit 0 with a warning /$regex/, got $rc: $(head -c 400 "$err")"
            fail=1; return
        fi ;;
    ok)
        if [ $rc -ne 0 ]; then
            echo "FAIL $what: expected success, got $rc: $(head -c 400 "$err")"; fail=1; return
        fi ;;
    any)
        if [ $rc -ne 0 ] && ! grep -Eiq -- "$regex" "$err"; then
            echo "FAIL $what: exit $rc and message lacks /$regex/: $(head -c 400 "$err")"
            fail=1; return
        fi ;;
    esac
    echo "ok   $what: exit $rc $(head -c 140 "$err" | tr '\n' ' ')"
}

while IFS=$'\t' read -r name expect regex; do
    [ -n "$name" ] || continue
    n=$((n + 1))
    path="$corpus/$name"
    run "$name" "$expect" "$regex" "$SCALEX_BIN" inspect "$path"
    rm -f "$tmp/conv.h5ad"
    run "$name" "$expect" "$regex" "$SCALEX_BIN" convert "$path" -o "$tmp/conv.h5ad"
    # a failed convert must not leave a file that looks whole
    if [ "$expect" = error ] && [ -e "$tmp/conv.h5ad" ]; then
        echo "FAIL $name: convert failed but wrote $tmp/conv.h5ad"; fail=1
    fi
done <"$corpus/cases.tsv"
[ "$n" -ge 15 ] || { echo "FAIL: only $n corpus cases"; fail=1; }
echo "$n corpus cases checked"
exit $fail
