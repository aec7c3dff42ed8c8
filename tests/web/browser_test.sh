#!/bin/bash
# The web page in headless Chromium against a real scalexd: a pancreas reference is trained
# and registered, the mouse query mapped onto it (one /map?wait= call), then the page is
# opened on that job. Checks: the page loaded and signed in, the jobs table lists the job,
# the plot has one point per UMAP cell (the API's count) of which the query points are the
# query file's cells (h5py), every query cell is drawn; a screenshot is kept under
# $SX_BUILD_DIR/test-artifacts/. Fails (never skips) when Chromium is missing:
# scripts/install-deps.sh installs it.
source "$(dirname "$0")/../integration/daemon_common.bash"
CHROME=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROME" ] || fail "chromium is not installed: run scripts/install-deps.sh (Debian package chromium)"
ART=$SX_BUILD_DIR/test-artifacts
mkdir -p "$ART"
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice --admin) # publishes the reference
start_daemon "$D" --workers 1 --threads-per-job 1
P=$DATA/pancreas_baron_human_mouse_cider
expect 201 "$(upload "$ALICE" '/v1/datasets?name=human' "$P/reference_human.h5ad")" "upload reference"
REF_DS=$(jq_ 'd["id"]')
expect 202 "$(req "$ALICE" POST /v1/jobs -d "{\"type\":\"integrate\",\"datasets\":[\"$REF_DS\"],\"options\":{\"batch_name\":\"Sample\",\"max_iteration\":60,\"min_features\":10,\"seed\":1}}")" "integrate"
JOB=$(jq_ 'd["id"]')
wait_job "$ALICE" "$JOB" 300 COMPLETE EXECUTOR_ERROR SYSTEM_ERROR
[ "$(jq_ 'd["state"]')" = COMPLETE ] || fail "integrate: $(cat "$WORK/body")"
expect 201 "$(req "$ALICE" POST /v1/references -d "{\"name\":\"pancreas\",\"job\":\"$JOB\"}")" "register reference"
expect 200 "$(upload "$ALICE" '/v1/references/pancreas/map?wait=300&label=Group' "$P/query_mouse.h5ad")" "map?wait"
MJ=$(jq_ 'd["job"]["id"]')
expect 200 "$(req "$ALICE" GET "/v1/jobs/$MJ/results/umap?page_size=200000")" "umap"
NALL=$(jq_ 'len(d["cells"])')
NREF=$(jq_ 'sum(c["set"] == "reference" for c in d["cells"])')
NQ=$("$PY" -c "import h5py; print(len(h5py.File('$P/query_mouse.h5ad','r')['obs']['_index']))")
[ "$NREF" -gt 0 ] && [ $((NALL - NREF)) = "$NQ" ] || fail "API UMAP: $NALL cells, $NREF reference, query file has $NQ"

# the page itself is served without a token
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")" = 200 ] || fail "GET / is not served"
for f in app.js app.css; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/web/$f")" = 200 ] || fail "GET /web/$f"
done

# a fresh profile each run; the token travels in the fragment (never sent to the server)
chrome() {
    local prof
    prof=$(mktemp -d "$WORK/chrome-XXXXXX")
    timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-dev-shm-usage --user-data-dir="$prof" --virtual-time-budget=30000 "$@" \
        2>>"$WORK/chrome.log"
}
PAGE="$URL/#token=$ALICE&job=$MJ"
chrome --enable-logging=stderr --v=0 --dump-dom "$PAGE" >"$WORK/dom.html" ||
    fail "chromium --dump-dom failed: $(tail -5 "$WORK/chrome.log")"
# the page's console: no uncaught JavaScript error
grep -E 'CONSOLE.*(Uncaught|Error)' "$WORK/chrome.log" && fail "JavaScript errors on the page"
cp "$WORK/dom.html" "$ART/ship_browser_dom.html"
"$PY" - "$WORK/dom.html" "$MJ" "$NALL" "$NREF" "$NQ" <<'PY' || fail "page content (DOM kept in $ART/ship_browser_dom.html)"
import sys
from html.parser import HTMLParser
dom, job, nall, nref, nq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
found = {"rows": [], "legend": 0}
class P(HTMLParser):
    stack = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body": found["body"] = a
        if tag == "canvas": found["canvas"] = a
        if tag == "tr" and "data-job" in a: found["rows"].append(a["data-job"])
        if tag == "li": found["legend"] += 1
        if tag == "title": self.stack.append("title")
    def handle_data(self, d):
        if self.stack: found["title"] = d; self.stack.pop()
P().feed(open(dom).read())
b = found["body"]
assert b.get("data-state") == "plotted", ("page state", b)
assert b.get("data-job") == job, b
assert int(b["data-points"]) == nall, ("points", b["data-points"], nall)
assert int(b["data-reference-points"]) == nref, ("reference points", b, nref)
assert int(b["data-query-points"]) == nq, ("query points", b, nq)
assert int(found["canvas"]["data-drawn-query"]) == nq, found["canvas"]
assert job in found["rows"], ("jobs table", found["rows"])
assert found["legend"] >= 2, "legend"
assert found["title"].endswith("%d points" % nall), found["title"]
print("page: %d points (%d reference, %d query), %d jobs listed, %d legend entries"
      % (nall, nref, nq, len(found["rows"]), found["legend"]))
PY
rm -f "$ART/ship_browser.png"
chrome --window-size=1400,900 --screenshot="$ART/ship_browser.png" "$PAGE" >/dev/null ||
    fail "chromium --screenshot failed: $(tail -5 "$WORK/chrome.log")"
[ -s "$ART/ship_browser.png" ] || fail "no screenshot"
# the screenshot shows a drawn plot: many distinct colours, not a blank page
"$PY" - "$ART/ship_browser.png" <<'PY' || fail "screenshot looks empty"
import sys, zlib, struct
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", b[16:24])
assert (w, h) == (1400, 900), (w, h)
print("screenshot %dx%d, %d bytes" % (w, h, len(b)))
assert len(b) > 20000, "a near-blank page compresses to a few KB"
PY
# without a token the page asks for one
chrome --dump-dom "$URL/" >"$WORK/dom0.html" || fail "chromium (no token)"
grep -q 'data-state="need-token"' "$WORK/dom0.html" || fail "page without a token: $(grep -o '<body[^>]*>' "$WORK/dom0.html")"
stop_daemon
echo "browser_test: all checks passed (screenshot $ART/ship_browser.png)"
