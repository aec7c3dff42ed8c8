#!/bin/bash
# The documentation follows the code: docs/api/reference.md is what docs/api/generate.sh makes
# of schema/openapi.json; docs/troubleshooting.md has a section for every problem type the
# daemon can produce (read from api/ and server/ sources) and none that it cannot; the user
# guide documents every setting `scalexd --help` lists (slurm_* are deploy/slurm's); every
# relative link in docs/ resolves.
set -euo pipefail
SRC=${SX_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SCALEXD_BIN:-${SX_BUILD_DIR:?run through ctest}/scalexd}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ship-docs-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v jq >/dev/null || fail "jq is not installed: run scripts/install-deps.sh"

# ---- API reference ----
bash "$SRC/docs/api/generate.sh" "$SRC/schema/openapi.json" >"$WORK/reference.md"
diff -u "$SRC/docs/api/reference.md" "$WORK/reference.md" >"$WORK/ref.diff" ||
    { head -40 "$WORK/ref.diff" >&2; fail "docs/api/reference.md is stale: run docs/api/generate.sh > docs/api/reference.md"; }
nroutes=$(jq '[.paths[] | keys[]] | length' "$SRC/schema/openapi.json")
[ "$(grep -c '^### ' "$WORK/reference.md")" -ge "$nroutes" ] || fail "reference misses routes"
echo "API reference: up to date ($nroutes operations)"

# ---- troubleshooting: problem types in the code <-> sections of the page ----
{
    # api_problem(o, 404, "not-found", ...) and api_refuse(...) anywhere in the daemon
    grep -rhoE 'api_(problem|refuse)\([^,]+, [0-9]+, "[a-z-]+"' "$SRC/api" "$SRC/server" | sed -E 's/.*"([a-z-]+)"$/\1/'
    # the service refusals' table in api_problem.c: {SRV_WHY_X, 404, "not-found", ...}
    grep -rhoE '\{SRV_WHY_[A-Z_]+, [0-9]+, "[a-z-]+"' "$SRC/api" | sed -E 's/.*"([a-z-]+)"$/\1/'
    # job error types: srv_error_type()'s table, and error_type = '...' set in SQL
    awk '/^const char \*srv_error_type\(/,/^}/' "$SRC/server/srv_jobs.c" | grep -oE 'return "[a-z-]+"' | cut -d'"' -f2
    # (the SQL string may be split across C string literals: -z reads each file as one line)
    { grep -rhzoE "error_type = (\"[[:space:]]*\")?'[a-z-]+'" "$SRC/server" || true; } | tr '\0' '\n' |
        grep -oE "'[a-z-]+'" | tr -d "'"
} | sort -u >"$WORK/code_types"
[ "$(wc -l <"$WORK/code_types")" -ge 20 ] || fail "found only $(wc -l <"$WORK/code_types") problem types in the code: the extraction broke"
grep -oE '^## `[a-z-]+`$' "$SRC/docs/troubleshooting.md" | cut -d'`' -f2 | sort -u >"$WORK/doc_types"
missing=$(comm -23 "$WORK/code_types" "$WORK/doc_types" | tr '\n' ' ')
stale=$(comm -13 "$WORK/code_types" "$WORK/doc_types" | tr '\n' ' ')
[ -z "$missing" ] || fail "docs/troubleshooting.md has no section for: $missing"
[ -z "$stale" ] || fail "docs/troubleshooting.md documents types the code no longer produces: $stale"
echo "troubleshooting: all $(wc -l <"$WORK/code_types") problem types documented"

# ---- guide: every setting ----
"$BIN" --help 2>&1 | sed -nE 's/^  --([a-z-]+) .*/\1/p' | tr - _ | grep -v '^slurm_' >"$WORK/settings" || true
[ "$(wc -l <"$WORK/settings")" -ge 10 ] || fail "could not read settings from scalexd --help"
while read -r s; do
    grep -q "\`$s\`" "$SRC/docs/guide/index.md" || fail "docs/guide/index.md does not document setting '$s'"
done <"$WORK/settings"
echo "guide: all $(wc -l <"$WORK/settings") settings documented"

# ---- relative links ----
for f in "$SRC"/docs/guide/*.md "$SRC"/docs/api/reference.md "$SRC"/docs/portal.md "$SRC"/docs/troubleshooting.md; do
    for l in $(grep -oE '\]\([^)#: ]+(#[^)]*)?\)' "$f" | sed -E 's/^\]\(([^)#]*).*/\1/'); do
        [ -e "$(dirname "$f")/$l" ] || fail "$(basename "$f"): broken link $l"
    done
done
echo "ship_docs: all checks passed"
