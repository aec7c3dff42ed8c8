#!/bin/bash
# The browser app end to end: headless Chromium (Debian's chromium, driven through the DevTools
# protocol by tests/tools/browser_e2e.py) against a real scalexd holding the demo pancreas
# reference (trained from data/demo/reference_human.h5ad as scripts/demo.sh does, few steps).
# A user signs in by typing a token, uploads data/demo/query_mouse.h5ad through the file input
# onto pancreas with label Group, leaves and comes back, and the result view is checked against
# the API; the page's adata.h5ad download must open in python3-anndata with every query cell;
# a refused file shows the API's problem detail, a throttled upload is canceled half way; another
# user's job id reads "not found"; My data deletes the job; the
# plot's frame time with 100k points is printed (not judged). Console errors fail the test.
# Screenshots: $SX_BUILD_DIR/test-artifacts/browser_e2e/ (printed). Fails (never skips) when
# Chromium is missing: scripts/install-deps.sh installs it.
source "$(dirname "$0")/daemon_common.bash"
SRC=${SX_SOURCE_DIR:?run through ctest}
CHROME=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROME" ] || fail "chromium is not installed: run scripts/install-deps.sh (Debian package chromium)"
ART=$SX_BUILD_DIR/test-artifacts/browser_e2e
rm -rf "$ART"
mkdir -p "$ART"
D=$WORK/data
Q=$SRC/data/demo/query_mouse.h5ad

# the demo reference, as scripts/demo.sh makes it (fewer training steps)
"$(dirname "$BIN")/scalex" integrate --data_list "$SRC/data/demo/reference_human.h5ad" \
    --batch_name Sample --min_features 10 --max_iteration 150 --seed 1 -o "$WORK/train" \
    >"$WORK/train.log" 2>&1 || fail "training the demo reference: $(tail -5 "$WORK/train.log")"
"$BIN" reference add "$WORK/train" --data-dir "$D" --name pancreas \
    --description "Baron et al. 2016 human pancreas (demo subset)" --species human \
    --tissue pancreas --labels Group,initial_cluster >/dev/null || fail "reference add"
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
BOB=$("$BIN" token create --data-dir "$D" --user bob)
start_daemon "$D" --workers 1 --threads-per-job 2

# bob's job: its id must show alice nothing
expect 200 "$(upload "$BOB" '/v1/references/pancreas/map?wait=600&label=Group' "$Q")" "bob's map"
BOBJOB=$(jq_ 'd["job"]["id"]')
# a file no reader accepts
head -c 4000 /dev/urandom >"$WORK/not_a_matrix.h5ad"

"$PY" "$SRC/tests/tools/browser_e2e.py" "$CHROME" "$URL" "$ALICE" "$Q" "$WORK/not_a_matrix.h5ad" \
    "$BOBJOB" "$ART" | tee "$WORK/e2e.out" || fail "browser run (chrome log: $ART/chrome.log)"
grep -q '^screenshots:' "$WORK/e2e.out" || fail "browser run ended early"
DL=$(sed -n 's/^download: //p' "$WORK/e2e.out")
LABELS=$(sed -n 's/^labels: //p' "$WORK/e2e.out") # the API's labels, read before the page deleted the job
"$PY" - "$DL" "$Q" "$LABELS" <<'PY' || fail "the downloaded adata.h5ad"
import json, sys, anndata
a = anndata.read_h5ad(sys.argv[1])
q = anndata.read_h5ad(sys.argv[2])
lab = {x["cell"]: x["label"] for x in json.load(open(sys.argv[3]))["labels"]}
assert set(q.obs_names) <= set(a.obs_names), "query cells missing from the download"
got = a.obs.loc[list(q.obs_names), "Group_transfer"].astype(str)
assert dict(zip(got.index, got)) == lab, "the download's Group_transfer differs from the API's labels"
print("download opens in anndata: %d cells x %d genes; the query's %d cells carry the API's labels"
      % (a.n_obs, a.n_vars, q.n_obs))
PY
stop_daemon
echo "browser_e2e: all checks passed (screenshots in $ART)"
