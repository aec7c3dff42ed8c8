#!/bin/bash
# The main job, out of the box: build scalex + scalexd, train a demo pancreas reference on the
# shipped human cells (data/demo/reference_human.h5ad, provenance in data/demo/PROVENANCE.md)
# the first time only, start scalexd in the foreground and print a token and the curl line that
# maps the shipped mouse query (data/demo/query_mouse.h5ad) onto the reference (label Group).
#
# Settings (environment): DEMO_DIR (data dir, default out/demo-daemon), LISTEN (default
# 127.0.0.1:8080; port 0 = any free port), DEMO_ITER (training steps at first start, default
# 2000), BUILD (build dir, default build), SX_DEMO_NO_BUILD=1 (use the binaries already in
# BUILD: the test of this script does so).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DEMO_DIR=${DEMO_DIR:-out/demo-daemon}
LISTEN=${LISTEN:-127.0.0.1:8080}
DEMO_ITER=${DEMO_ITER:-2000}
if [ "${SX_DEMO_NO_BUILD:-0}" != 1 ]; then
    JOBS=$(nproc 2>/dev/null || echo 2)
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD" -j "$JOBS" --target scalex_cli scalexd
fi
SCALEX=$BUILD/scalex
SCALEXD=$BUILD/scalexd
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)

# 1. the reference, trained once: a later start finds it in the registry
if [ ! -f "$DEMO_DIR/references/pancreas/reference.h5" ]; then
    echo "demo: first start: training the pancreas reference on data/demo/reference_human.h5ad" \
         "($DEMO_ITER steps)..." >&2
    T0=$(date +%s)
    rm -rf "$DEMO_DIR/demo-train"
    "$SCALEX" integrate --data_list data/demo/reference_human.h5ad --batch_name Sample \
        --min_features 10 --max_iteration "$DEMO_ITER" --seed 1 -o "$DEMO_DIR/demo-train" \
        >"$DEMO_DIR/demo-train.log" 2>&1 ||
        { tail -20 "$DEMO_DIR/demo-train.log" >&2; echo "demo: training failed" >&2; exit 1; }
    "$SCALEXD" reference add "$DEMO_DIR/demo-train" --data-dir "$DEMO_DIR" --name pancreas \
        --description "Baron et al. 2016 human pancreas (inDrop, 175 cells, 4 donors; demo subset)" \
        --species human --tissue pancreas --labels Group,initial_cluster >/dev/null
    rm -rf "$DEMO_DIR/demo-train"
    echo "demo: reference trained in $(( $(date +%s) - T0 )) s" >&2
fi

# 2. one token per demo data dir, kept so that restarts print the same one
if [ ! -s "$DEMO_DIR/demo.token" ]; then
    "$SCALEXD" token create --data-dir "$DEMO_DIR" --user demo >"$DEMO_DIR/demo.token.tmp"
    mv "$DEMO_DIR/demo.token.tmp" "$DEMO_DIR/demo.token"
fi
TOKEN=$(cat "$DEMO_DIR/demo.token")

# 3. serve; print the curl line once the daemon listens (the port file holds the real port)
rm -f "$DEMO_DIR/scalexd.port"
"$SCALEXD" --listen "$LISTEN" --data-dir "$DEMO_DIR" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' INT TERM
for _ in $(seq 1 400); do
    [ -s "$DEMO_DIR/scalexd.port" ] && break
    kill -0 "$PID" 2>/dev/null || { echo "demo: scalexd did not start (is $LISTEN in use? set LISTEN)" >&2; exit 1; }
    sleep 0.05
done
URL="http://${LISTEN%:*}:$(cat "$DEMO_DIR/scalexd.port")"
cat <<EOF

scalexd is serving at $URL (data dir $DEMO_DIR; Ctrl-C stops it)
token: $TOKEN

Map the shipped mouse query onto the demo human pancreas reference (labels from column Group):

curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream' --data-binary @data/demo/query_mouse.h5ad "$URL/v1/references/pancreas/map?wait=300&label=Group"

EOF
# Ctrl-C / TERM: the daemon drains (running jobs finish or are re-queued); wait for it
set +e
wait "$PID"
rc=$?
if [ "$rc" -gt 128 ]; then wait "$PID"; rc=$?; fi
exit "$rc"
