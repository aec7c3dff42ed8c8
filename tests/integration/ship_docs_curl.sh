#!/bin/bash
# Runs every ```sh block of docs/guide/walkthrough*.md, in order, one bash session per page,
# against a real scalexd with a fresh token (SCALEXD, TOKEN, DATA set as the pages say), so
# the curl walk-throughs cannot drift from the API. A block that fails (curl -f on an HTTP
# error, a `test` in the page) fails the test with the page, the block and its output.
source "$(dirname "$0")/daemon_common.bash"
SRC=${SX_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v jq >/dev/null || fail "jq is not installed: run scripts/install-deps.sh"
D=$WORK/data
TOKEN=$("$BIN" token create --data-dir "$D" --user walker --admin) # the walk-throughs publish references (admins only by default)
start_daemon "$D" --workers 1 --threads-per-job 1
pages=("$SRC"/docs/guide/walkthrough*.md)
# one per SCALEX tutorial: integration, projection, label transfer, scATAC, RNA + ATAC
[ "${#pages[@]}" -ge 5 ] && [ -f "${pages[0]}" ] || fail "expected at least 5 walk-throughs, found ${pages[*]}"
for page in "${pages[@]}"; do
    name=$(basename "$page" .md)
    # every ```sh block, each prefixed with a marker that names it in the output
    awk -v p="$name" '
        /^```sh[ \t]*$/ { inb = 1; n++; print "echo \"----- " p " block " n " -----\""; next }
        /^```[ \t]*$/ && inb { inb = 0; next }
        inb { print }
        END { if (inb) { print "echo unterminated block; exit 9" } ; if (n == 0) print "echo no sh blocks; exit 9" }
    ' "$page" >"$WORK/$name.sh"
    nblocks=$(grep -c '^```sh' "$page")
    mkdir -p "$WORK/run-$name"
    t0=$(date +%s)
    (cd "$WORK/run-$name" && SCALEXD=$URL TOKEN=$TOKEN DATA=$DATA \
        bash -euo pipefail "$WORK/$name.sh") >"$WORK/$name.out" 2>&1 ||
        { cat "$WORK/$name.out" >&2; fail "$name: a block failed (last marker above names it)"; }
    [ "$(grep -c '^----- ' "$WORK/$name.out")" = "$nblocks" ] || fail "$name: not every block ran"
    echo "$name: $nblocks blocks passed in $(( $(date +%s) - t0 )) s"
done
healthy
stop_daemon
echo "ship_docs_curl: all walk-throughs ran"
