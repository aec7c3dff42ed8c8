#!/usr/bin/env bash
# Untrusted uploads never take the daemon down (issue 14): every crash/hang reproducer in
# ../shared/security/fuzz and every resource bomb is uploaded to a real scalexd; each must get
# a 4xx problem within 60 s while the daemon keeps its pid, its RSS stays under 400 MB and a
# valid upload still returns 201 right after. The reproducers crash or hang libhdf5 1.10 itself:
# what holds them is the validation child process (daemon/sandbox.c), not a fix in a reader.
source "$(dirname "$0")/daemon_common.bash"
SEC=${SX_SHARED}/security
[ -d "$SEC/fuzz" ] || { echo "SKIP: no $SEC/fuzz"; exit 0; }
D=$WORK/data
mkdir -p "$D"
TOK=$("$BIN" token create --data-dir "$D" --user mallory)
# two validation threads: the two hang files would wedge both in an unconfined daemon
start_daemon "$D" --workers 1
PID0=$DPID
rss_mb() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$DPID/status"; }
n=0
for f in "$SEC"/fuzz/*.h5ad "$SEC"/mtx_dims_5000000.mtx "$SEC"/mtx_dims_max.mtx \
         "$SEC"/bomb_commas_50M.csv.gz "$SEC"/h5_manyrows_2e7.h5ad; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    t0=$(date +%s)
    code=$(upload "$TOK" "/v1/datasets?name=bad" "$f" --max-time 120) || code=timeout
    dt=$(( $(date +%s) - t0 ))
    case "$code" in 4??) ;; *) fail "$name: HTTP $code, expected a 4xx: $(head -c 300 "$WORK/body")" ;; esac
    [ "$dt" -le 60 ] || fail "$name: answered after ${dt}s (limit 60 s)"
    grep -q '/tmp\|/work\|data-dir\|scalexd-it' "$WORK/body" && fail "$name: the error shows a server path: $(cat "$WORK/body")"
    kill -0 "$PID0" 2>/dev/null || fail "$name: the daemon died"
    [ "$DPID" = "$PID0" ] || fail "$name: the daemon changed pid"
    r=$(rss_mb)
    [ "$r" -lt 400 ] || fail "$name: daemon RSS ${r} MB (limit 400)"
    echo "ok $name -> $code in ${dt}s: $(jq_ 'd.get("detail","")[:160]') (RSS ${r} MB)"
    code=$(upload "$TOK" "/v1/datasets?name=good" "$SEC/small.csv")
    expect 201 "$code" "valid upload right after $name"
    n=$((n + 1))
done
[ "$n" -ge 9 ] || fail "only $n reproducers found under $SEC"
healthy
echo "PASS: $n hostile uploads refused, daemon pid $PID0 alive, RSS $(rss_mb) MB"
