#!/bin/bash
# The HTTP edge under a client that does not play by the rules (issue 14, reproducers in
# ../shared/security): slow connections beyond the per-IP limit are closed at once and
# trickled headers or bodies are cut at their deadline while another client is served; a
# multipart body without its closing boundary is 400, not a truncated file; an over-limit
# chunked body gets its 413 before the body ends and the connection is closed; conflicting
# Content-Length headers are 400; HEAD works on GET routes; query values must be UTF-8
# without NUL and `wait` a finite number; a large JSON body's 413 names max_json_bytes; an
# upload that finds the disk full is 507 with Retry-After. Only loopback traffic; every loop
# is bounded in count and time, and deadlines are generous.
source "$(dirname "$0")/daemon_common.bash"
D=$WORK/data
ALICE=$("$BIN" token create --data-dir "$D" --user alice)
CSV=$SX_SHARED/security/small.csv
[ -f "$CSV" ] || CSV=$DATA/../security/small.csv
start_daemon "$D" --workers 1 --threads-per-job 1 --max-upload-bytes 1M --max-json-bytes 64K \
    --http-max-connections-per-ip 8 --http-header-timeout 5 --http-body-timeout 3 \
    --http-body-min-rate 1000
PORT=${URL##*:}

# ---- HEAD on GET routes: the GET's status and Content-Length (no body: see the raw checks) ----
for p in /healthz /v1/me /v1/datasets /v1/openapi.json; do
    g=$(req "$ALICE" GET "$p")
    glen=$(stat -c %s "$WORK/body")
    expect 200 "$(req "$ALICE" HEAD "$p" -I)" "HEAD $p (GET is $g)"
    grep -qi "^content-length: $glen" "$WORK/hdr" || fail "HEAD $p: Content-Length is not the GET's $glen: $(cat "$WORK/hdr")"
done
expect 405 "$(req "$ALICE" HEAD /v1/references/none/map -I)" "HEAD on a POST-only path"

# ---- query values: UTF-8 without NUL, naming the parameter; wait a finite number ----
for q in '%FF' 'a%00b' '%C0%AF' '%ED%A0%80'; do
    st=$(req "$ALICE" POST "/v1/datasets?name=$q" -H 'Content-Type: application/octet-stream' --data-binary "@$CSV")
    expect_problem 400 invalid-parameter "$st" "name=$q"
    grep -q "'name'" "$WORK/body" || fail "name=$q: the problem does not name the parameter: $(cat "$WORK/body")"
done
expect 201 "$(req "$ALICE" POST "/v1/datasets?name=caf%C3%A9" -H 'Content-Type: application/octet-stream' --data-binary "@$CSV")" "a UTF-8 name"
[ "$(jq_ 'd["name"]')" = "café" ] || fail "UTF-8 name stored as $(jq_ 'd["name"]')"
for w in nan inf -inf 1e999 abc 1x -1; do
    st=$(req "$ALICE" POST "/v1/references/none/map?wait=$w" -H 'Content-Type: application/octet-stream' --data-binary "@$CSV")
    expect_problem 400 invalid-parameter "$st" "wait=$w"
    grep -q 'wait' "$WORK/body" || fail "wait=$w: the problem does not name wait"
done

# ---- a JSON body over max_json_bytes: the 413 names that option ----
head -c 100000 /dev/zero | tr '\0' ' ' >"$WORK/big.json"
expect_problem 413 too-large "$(req "$ALICE" POST /v1/jobs -H 'Content-Type: application/json' --data-binary "@$WORK/big.json")" "declared big JSON"
grep -q 'max-json-bytes' "$WORK/body" && ! grep -q 'upload' "$WORK/body" || fail "JSON 413 names the wrong option: $(cat "$WORK/body")"

# ---- raw-socket cases: framing, truncated multipart, chunked over the limit, slow clients ----
"$PY" - "$PORT" "$ALICE" <<'PY' || fail "raw-socket edge checks"
import json, socket, sys, time
PORT, TOK = int(sys.argv[1]), sys.argv[2]
AUTH = "Authorization: Bearer " + TOK + "\r\n"

def conn(src="127.0.0.1"):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", PORT))
    return s

def answer(s, limit=30):
    """The whole answer until the server closes (Connection: close), within limit seconds."""
    data, t0 = b"", time.time()
    while time.time() - t0 < limit:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not d:
            break
        data += d
    return data

def status_body(data):
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body

def closed_by_server(s, deadline):
    """True when the server closes s (EOF or reset) before deadline (looked at least once)."""
    while True:
        s.settimeout(max(0.01, min(0.2, deadline - time.time())))
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            pass
        except OSError:
            return True
        if time.time() >= deadline:
            return False

# HEAD: the headers of the GET, and nothing after them
for path in ("/healthz", "/v1/me"):
    s = conn()
    s.sendall(("HEAD %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % (path, AUTH)).encode())
    data = answer(s)
    st, body = status_body(data)
    assert st == 200 and body == b"" and b"Content-Length: " in data, (path, data)
    s.close()

# two different Content-Length headers (and a list that disagrees): 400 before any handler
for cl in (b"Content-Length: 2\r\nContent-Length: 5\r\n", b"Content-Length: 2, 5\r\n"):
    s = conn()
    s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + AUTH.encode() + cl +
              b"Content-Type: application/json\r\nConnection: close\r\n\r\n{}")
    st, body = status_body(answer(s))
    assert st == 400 and b"Content-Length" in body, (cl, st, body)
    s.close()

# multipart without its closing boundary: 400, nothing stored (mp_trunc.py)
csv = b",c0,c1,c2\nG0,1,2,3\nG1,4,5,6\nG2,7,8,123456\n"
body = (b"--BOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\n" + csv)
s = conn()
s.sendall(("POST /v1/datasets?name=mp_trunc HTTP/1.1\r\nHost: x\r\n" + AUTH +
           "Content-Type: multipart/form-data; boundary=BOUND\r\nContent-Length: %d\r\n"
           "Connection: close\r\n\r\n" % len(body)).encode() + body)
st, b = status_body(answer(s))
d = json.loads(b)
assert st == 400 and d["type"].endswith("bad-multipart") and "boundary" in d["detail"], (st, d)
s.close()

# chunked bodies over the limit: the 413 arrives before the body ends, then the server closes
for path, limit_name in (("/v1/datasets", b"max-upload-bytes"), ("/v1/jobs", b"max-json-bytes")):
    s = conn()
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/%s\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % (path, AUTH, "octet-stream" if "data" in path
                                                       else "json")).encode())
    chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
    sent, got = 0, b""
    s.settimeout(0.05)
    t0 = time.time()
    # at most 256 MiB or 60 s: far past the 1 MiB limit; before the fix no answer came
    while sent < (256 << 20) and time.time() - t0 < 60 and not got:
        try:
            s.sendall(chunk)
            sent += 65536
        except socket.timeout:
            pass
        except OSError:
            break
        try:
            got = s.recv(65536)
        except socket.timeout:
            pass
        except OSError:
            break
    s.settimeout(10)
    got += answer(s, 20)
    assert got.startswith(b"HTTP/1.1 413"), (path, sent, got[:200])
    assert limit_name in got, (path, got)
    assert sent < (200 << 20), (path, sent)  # answered long before the body's end
    s.close()
print("framing, multipart, chunked: ok")

# slow clients: 20 connections from 127.0.0.1 with unfinished headers (per-IP limit 8)
slow = []
for i in range(20):
    s = conn()
    s.sendall(b"GET /v1/me HTTP/1.1\r\nHost: x\r\n")
    slow.append(s)
# the ones past the limit are closed at once (before the 5 s header deadline)
deadline = time.time() + 2.5
extra = sum(closed_by_server(s, deadline) for s in slow)
assert extra >= 12, ("connections over the per-IP limit left open", extra)
# another client (another loopback address) is served meanwhile
t0 = time.time()
h = conn("127.0.0.2")
h.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
st, _ = status_body(answer(h, 5))
assert st == 200 and time.time() - t0 < 5, (st, time.time() - t0)
h.close()
# trickled headers do not extend the deadline: every slow connection is cut
t0 = time.time()
open_ = list(slow)
while open_ and time.time() - t0 < 30:
    for s in list(open_):
        try:
            s.sendall(b"X-a: b\r\n")
        except OSError:
            open_.remove(s)
            continue
        if closed_by_server(s, time.time() + 0.1):
            open_.remove(s)
    time.sleep(0.3)
assert not open_, ("trickled headers kept %d connections open for 30 s" % len(open_))
for s in slow:
    s.close()
# a body trickled below http_body_min_rate (1000 B/s) is cut too
s = conn()
s.sendall(("POST /v1/datasets HTTP/1.1\r\nHost: x\r\n" + AUTH + "Content-Type: application/"
           "octet-stream\r\nContent-Length: 100000\r\n\r\n").encode())
t0, cut = time.time(), False
while time.time() - t0 < 30 and not cut:
    try:
        s.sendall(b"0123456789")
    except OSError:
        cut = True
        break
    cut = closed_by_server(s, time.time() + 0.5)
assert cut, "a body trickled at 20 B/s was not cut within 30 s"
s.close()
print("slow clients: ok")
PY
healthy

# ---- an upload that finds the disk full: 507 with Retry-After ----
# The data dir is a 4 MiB tmpfs in a private mount namespace (so the daemon's port file is
# not visible here: it listens on a port chosen here, and the token is written outside).
stop_daemon
if unshare -rm true 2>/dev/null; then
    D2=$WORK/full
    mkdir -p "$D2"
    P2=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    unshare -rm bash -c 'mount -t tmpfs -o size=4m tmpfs "$1" && "$2" token create --data-dir "$1" --user bob >"$3" && exec "$2" --listen "127.0.0.1:$4" --data-dir "$1" --drain-grace 1 --max-upload-bytes 64M --workers 1 --threads-per-job 1' \
        _ "$D2" "$BIN" "$WORK/bob.tok" "$P2" >>"$WORK/daemon.log" 2>&1 &
    DPID=$!
    URL=http://127.0.0.1:$P2
    for _ in $(seq 1 600); do # 60 s
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ] && break
        kill -0 "$DPID" 2>/dev/null || fail "scalexd on a tmpfs exited at start"
        sleep 0.1
    done
    healthy
    BOB=$(cat "$WORK/bob.tok")
    head -c $((8 << 20)) /dev/urandom >"$WORK/big.bin"
    for how in raw multipart; do
        if [ $how = raw ]; then
            st=$(req "$BOB" POST /v1/datasets -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/big.bin" || true)
        else
            st=$(req "$BOB" POST /v1/datasets -F "file=@$WORK/big.bin" || true)
        fi
        expect_problem 507 insufficient-storage "$st" "$how upload on a full disk"
        grep -qi '^retry-after: [0-9]' "$WORK/hdr" || fail "$how 507 without Retry-After"
    done
    # the refused bytes were removed at once: a small upload fits again
    expect 201 "$(req "$BOB" POST /v1/datasets -F "file=@$CSV")" "upload after a full disk"
    stop_daemon
else
    echo "SKIP 507 check: cannot make a private mount namespace (unshare -rm) for a small tmpfs"
fi
echo "daemon_edge: ok"
