#!/bin/sh
# Build and run every test: a normal build, then the AddressSanitizer +
# UndefinedBehaviorSanitizer build. Run from anywhere; needs scripts/install-deps.sh first.
set -eu
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
for variant in release asan; do
  dir=build-test-$variant
  flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
  [ "$variant" = asan ] && flags="$flags -DSX_SANITIZE=ON"
  echo "== $variant build ($dir)"
  cmake -S . -B "$dir" $flags >/dev/null
  cmake --build "$dir" -j "$JOBS"
  echo "== $variant tests"
  # ASan's leak checker needs ptrace, which some sandboxes forbid; leaks are checked where it works.
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    ctest --test-dir "$dir" --output-on-failure -j "$JOBS" ${SX_CTEST_ARGS:-}
done
