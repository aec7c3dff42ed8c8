# Helpers sourced by tests/integration/daemon_*.sh (not a test itself: no .sh suffix).
# Starts a real scalexd on a free loopback port with a temporary data dir and drives it
# with curl.
set -euo pipefail
BIN=${SCALEXD_BIN:-${SX_BUILD_DIR:?run through ctest}/scalexd}
PY=${SX_PYTHON:-/usr/bin/python3}
DATA=${SX_SHARED:?run through ctest}/data
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scalexd-it-XXXXXX")
DPID=""
fail() { echo "FAIL: $*" >&2; [ -f "$WORK/daemon.log" ] && tail -20 "$WORK/daemon.log" >&2; exit 1; }
cleanup() { if [ -n "$DPID" ]; then kill -9 "$DPID" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT

# start_daemon DATADIR [flags...]: port 0 -> the daemon writes DATADIR/scalexd.port
start_daemon() {
    local dir=$1; shift
    rm -f "$dir/scalexd.port"
    "$BIN" --listen 127.0.0.1:0 --data-dir "$dir" --drain-grace 1 "$@" >>"$WORK/daemon.log" 2>&1 &
    DPID=$!
    for _ in $(seq 1 1200); do # 60 s: a loaded machine under ASan starts slowly
        [ -s "$dir/scalexd.port" ] && break
        kill -0 "$DPID" 2>/dev/null || fail "scalexd exited at start"
        sleep 0.05
    done
    [ -s "$dir/scalexd.port" ] || fail "scalexd wrote no port file within 60 s"
    URL="http://127.0.0.1:$(cat "$dir/scalexd.port")"
}
stop_daemon() { kill -TERM "$DPID"; wait "$DPID" || fail "scalexd exit status $?"; DPID=""; }
kill9_daemon() { kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""; }

# req TOKEN METHOD PATH [curl args...]: body in $WORK/body, headers in $WORK/hdr, prints status
req() {
    local tok=$1 m=$2 p=$3; shift 3
    local auth=()
    [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
    curl -sS -o "$WORK/body" -D "$WORK/hdr" -w '%{http_code}' -X "$m" "${auth[@]}" "$@" "$URL$p"
}
upload() { # upload TOKEN PATH FILE
    req "$1" POST "$2" -H 'Content-Type: application/octet-stream' --data-binary "@$3"
}
jq_() { "$PY" -c "import json,sys; d=json.load(open('$WORK/body')); print($1)"; }
expect() { # expect STATUS GOT what
    [ "$2" = "$1" ] || fail "$3: HTTP $2, expected $1: $(head -c 400 "$WORK/body")"
}
# expect_problem STATUS SLUG GOT what: RFC 9457 body with our type and a detail
expect_problem() {
    expect "$1" "$3" "$4"
    grep -qi '^content-type: application/problem+json' "$WORK/hdr" || fail "$4: not problem+json"
    "$PY" - "$WORK/body" "$1" "$2" "$4" <<'PY' || fail "$4: bad problem body"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == int(sys.argv[2]), d
assert d["type"] == "urn:scalexd:problem:" + sys.argv[3], (d["type"], sys.argv[3])
assert len(d["detail"]) > 10 and d["title"], d
PY
    healthy
}
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ] || fail "daemon not serving"; }
# wait_job TOKEN ID SECONDS STATES...: poll until the state is one of STATES
wait_job() {
    local tok=$1 id=$2 secs=$3; shift 3
    local s=""
    for _ in $(seq 1 $((secs * 5))); do
        req "$tok" GET "/v1/jobs/$id" >/dev/null
        s=$(jq_ 'd["state"]')
        for want in "$@"; do [ "$s" = "$want" ] && return 0; done
        sleep 0.2
    done
    fail "job $id is $s after ${secs}s, expected $*: $(cat "$WORK/body")"
}
