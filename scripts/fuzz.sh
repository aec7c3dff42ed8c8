#!/usr/bin/env bash
# Run the libFuzzer drivers of tests/fuzz for a bounded time each, then triage what they found.
#
#   scripts/fuzz.sh [SECONDS] [DRIVER...]
#     SECONDS  per driver (default 60)
#     DRIVER   h5ad tenx_h5 mtx text gzip jobspec multipart (default: every driver built)
#
# The longer run (documented in tests/fuzz/README.md), one driver at a time on one core:
#   nice -n 10 scripts/fuzz.sh 3600 h5ad      # an hour; the corpus grows in $SX_FUZZ_BUILD
#
# Environment: SX_FUZZ_BUILD  the clang build (default build-fuzz; configured and built here
#                             when it has no drivers yet)
#              SX_FUZZ_TIMEOUT seconds one input may take (default 10: longer is a hang)
#              SX_FUZZ_RSS_MB  memory limit of the fuzzing process (default 2048)
#              SX_SHARED, SX_PYTHON  ../shared and the Debian python3 (the seed corpora)
#
# Every input that crashed, hung or ran out of memory is re-run alone and classified by the
# first stack frame that is not the sanitizer runtime, libFuzzer or libc:
#   in libhdf5  -> KNOWN (tests/fuzz/KNOWN.md): printed and kept, the run still passes. Such
#                  a crash is libhdf5's own memory error on a corrupt file; scalexd contains it
#                  by reading uploads in a child process (issue 14), not by code of ours;
#   anywhere else (our code, zlib, no stack, out of memory), or libhdf5 overrunning memory
#               our code allocated -> a FAILURE: exit 1.
# A hang is re-run with 3x the time first; what does not fail again alone is kept under
# unreproduced/ and reported, not failed (a loaded CI machine makes slow inputs "hang").
# Findings stay in $SX_FUZZ_BUILD/fuzz-findings/<driver>/{known,new}/ with a .log each.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
case $SECONDS_EACH in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [DRIVER...]" >&2; exit 2 ;; esac
BUILD=${SX_FUZZ_BUILD:-build-fuzz}
TIMEOUT=${SX_FUZZ_TIMEOUT:-10}
RSS_MB=${SX_FUZZ_RSS_MB:-2048}
SHARED=${SX_SHARED:-../shared}
PY=${SX_PYTHON:-/usr/bin/python3}

if ! ls "$BUILD"/fuzz/fuzz_* >/dev/null 2>&1; then
  echo "== building the fuzz drivers in $BUILD (clang, ASan + UBSan + libFuzzer)"
  cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DSX_FUZZ=ON >/dev/null &&
    cmake --build "$BUILD" --target sx_fuzzers -j "$(nproc 2>/dev/null || echo 2)" >/dev/null ||
    { echo "fuzz.sh: the fuzz build failed (scripts/install-deps.sh installs clang)" >&2; exit 2; }
fi
drivers=("$@")
if [ ${#drivers[@]} -eq 0 ]; then
  for f in "$BUILD"/fuzz/fuzz_*; do drivers+=("${f##*/fuzz_}"); done
fi

# Seed corpora: generated once per build dir, again when the hand seeds or the generator
# change (ctest runs several drivers at once: a lock).
seeds="$BUILD/fuzz-seeds"
(
  flock 9
  if [ ! -f "$seeds/.done" ] || [ tests/fuzz/make_seeds.py -nt "$seeds/.done" ] ||
     [ -n "$(find tests/fuzz/seeds -newer "$seeds/.done" 2>/dev/null | head -1)" ]; then
    rm -rf "$seeds"
    "$PY" tests/fuzz/make_seeds.py "$SHARED" "$seeds" >"$BUILD/fuzz-seeds.log" 2>&1 ||
      { echo "fuzz.sh: seed generation failed:"; tail -5 "$BUILD/fuzz-seeds.log"; exit 2; }
    touch "$seeds/.done"
  fi
) 9>"$BUILD/fuzz-seeds.lock" || exit 2

# ASan's leak checker needs ptrace (forbidden in some sandboxes) and libhdf5 keeps global
# state: leaks are not findings here. allocator_may_return_null: a huge malloc our code
# asked for is reported as a finding through -malloc_limit_mb instead of ASan aborting.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:handle_abort=1:${ASAN_OPTIONS_EXTRA:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OPENBLAS_NUM_THREADS=1
# the inputs' files (tests/fuzz/fz_memfile.h): in RAM, and gone with this script
shm=/dev/shm; [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
SX_FUZZ_TMP=$(mktemp -d "$shm/sxfuzz-run.XXXXXX") || exit 2
export SX_FUZZ_TMP
trap 'rm -rf "$SX_FUZZ_TMP"' EXIT

# first frame of a stack in a log that is not sanitizer / libFuzzer / libc: of the first stack
# (where it went wrong), or with `alloc` of the stack after "allocated by" / "freed by"
# (whose memory it was)
first_frame() {
  awk -v want="${2:-crash}" '
    /(allocated|freed) by thread/ { if (want == "alloc") on = 1; next }
    /^ *#[0-9]+ 0x/ {
      if (want == "alloc" && !on) next
      if ($0 ~ /__sanitizer|__asan|__ubsan|__interceptor|fuzzer::|libc\.so|libclang_rt|compiler-rt|sanitizer_common/) next
      # libstdc++ frames are the libFuzzer runtime (our code is C): an RSS out-of-memory
      # prints the stack of its own last operator new first, then the allocation that grew
      if ($0 ~ /libstdc\+\+/) next
      # libc named by its sources (debug info present): memcpy and friends in sysdeps/
      if ($0 ~ /sysdeps\/|glibc-[0-9]/) next
      # frames inside the driver binary without a source line are its sanitizer / libFuzzer
      # runtime (interceptors such as malloc or strlen): all code of ours has line info
      if ($0 ~ /\/fuzz\/fuzz_[a-z0-9_]+\+0x[0-9a-f]+\)/) next
      sub(/^ *#[0-9]+ 0x[0-9a-f]+ /, ""); sub(/ \(BuildId.*/, ""); print; exit }' "$1"
}
in_hdf5() { [[ $1 == *libhdf5* || $1 == H5* || $1 == "in H5"* ]]; }

# CPU time of this script's finished children (libFuzzer and its fork-mode workers), in ticks
cpu_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }

fail=0
for d in "${drivers[@]}"; do
  bin="$BUILD/fuzz/fuzz_$d"
  [ -x "$bin" ] || { echo "fuzz.sh: no driver $bin" >&2; fail=1; continue; }
  corpus="$BUILD/fuzz-corpus/$d"
  findings="$BUILD/fuzz-findings/$d"
  mkdir -p "$corpus" "$findings/known" "$findings/new" "$seeds/$d"
  log="$BUILD/fuzz-$d.log"
  echo "== fuzz_$d: ${SECONDS_EACH}s (timeout ${TIMEOUT}s per input, ${RSS_MB} MB)"
  t0=$(cpu_ticks)
  # -fork=1 + -ignore_*: a crash ends one child, not the run, so a known libhdf5 crash found
  # early does not stop the search for ours; every finding is written to $findings/.
  nice -n 10 "$bin" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
    -malloc_limit_mb="$RSS_MB" -artifact_prefix="$findings/" -print_final_stats=1 \
    ${SX_FUZZ_SEED:+-seed="$SX_FUZZ_SEED"} \
    "$corpus" "$seeds/$d" >"$log" 2>&1
  rc=$?
  cpu=$(( ($(cpu_ticks) - t0) / $(getconf CLK_TCK) ))
  grep -E '^#[0-9]+:' "$log" | tail -1
  # In fork mode libFuzzer exits with the code of its last worker, so a nonzero code after a
  # finding is that finding (triaged below); without one, the run itself went wrong.
  found=$(find "$findings" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o \
          -name 'oom-*' -o -name 'leak-*' \) ! -name '*.log' | wc -l)
  if [ $rc -ne 0 ] && [ "$found" -eq 0 ]; then
    echo "FAIL fuzz_$d: libFuzzer exited $rc without a finding:"; tail -20 "$log"; fail=1
  fi
  for a in "$findings"/crash-* "$findings"/timeout-* "$findings"/oom-* "$findings"/leak-*; do
    [ -f "$a" ] || continue
    kind=${a##*/}; kind=${kind%%-*}
    # A hang is re-run with 3x the time: on a loaded machine a slow input is no hang. So is
    # an out-of-memory: its stack is printed (symbolized) from the malloc hook, which on a
    # loaded machine took longer than the per-input timeout and left "no stack".
    t=$TIMEOUT; { [ "$kind" = timeout ] || [ "$kind" = oom ]; } && t=$((TIMEOUT * 3))
    timeout $((t * 3 + 30)) "$bin" -timeout="$t" -rss_limit_mb="$RSS_MB" \
      -malloc_limit_mb="$RSS_MB" "$a" >"$a.log" 2>&1
    rc=$?
    frame=$(first_frame "$a.log")
    owner=$(first_frame "$a.log" alloc)
    if [ $rc -eq 0 ]; then
      # ran to the end alone: a timeout that was CPU starvation, or a crash that needs
      # the state of the fuzzing process; kept for a look, not a failure
      echo "NOT REPRODUCED $kind (alone it ran through): [${a##*/}] kept in $findings/unreproduced/"
      mkdir -p "$findings/unreproduced"
      mv "$a" "$a.log" "$findings/unreproduced/"
    elif [ -n "$frame" ] && in_hdf5 "$frame" && { [ -z "$owner" ] || in_hdf5 "$owner"; }; then
      echo "KNOWN $kind in libhdf5 (KNOWN.md): $frame  [${a##*/}]"
      mv "$a" "$a.log" "$findings/known/"
    else
      # outside libhdf5, no stack (out of memory), or libhdf5 overrunning memory that our
      # code allocated (a buffer we sized wrong): ours to fix
      echo "FAIL fuzz_$d: $kind at ${frame:-no stack}${owner:+ (memory of $owner)}" \
           "[saved as $findings/new/${a##*/}]"
      grep -E 'ERROR|SUMMARY|runtime error|out-of-memory|#[0-9] ' "$a.log" | head -15
      mv "$a" "$a.log" "$findings/new/"
      fail=1
    fi
  done
  echo "fuzz_$d: ${cpu} CPU-seconds fuzzed, $(ls "$corpus" | wc -l) inputs in $corpus"
  echo "$(date -u +%FT%TZ) fuzz_$d ${cpu} cpu_s" >>"$BUILD/fuzz-cpu.log"
done
exit $fail
