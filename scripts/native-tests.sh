#!/usr/bin/env bash
# Builds the native core tests (native/test/core_tests.cc + native/core) with
# plain CMake -- no Node headers, no cmake-js -- under ThreadSanitizer
# (build-tsan/) and AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/), and runs both. Exits non-zero on any build error, test
# failure or sanitizer report.
#
#   scripts/native-tests.sh            both variants
#   scripts/native-tests.sh thread     only TSan
#   scripts/native-tests.sh address    only ASan+UBSan
#
# Needs: cmake >= 3.15, a C++17 compiler with the sanitizer runtimes (on
# Debian/Ubuntu with GCC 12: libtsan2 and libasan8 + libubsan1, which come
# with g++-12 via libgcc-12-dev). Extra arguments for the test program can be
# passed in RG_TEST_ARGS.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then variants=(thread address); fi

jobs="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

# Sanitizer behaviour: stop at the first report, with a distinctive exit code.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 exitcode=66 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="halt_on_error=1 abort_on_error=0 detect_leaks=1 strict_string_checks=1 detect_stack_use_after_return=1 check_initialization_order=1 exitcode=67 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 exitcode=68 ${UBSAN_OPTIONS:-}"

# GCC 12's TSan runtime predates support for the larger mmap randomisation of
# recent kernels (vm.mmap_rnd_bits > 28) and aborts with "unexpected memory
# mapping". Running without address-space randomisation avoids that.
tsan_prefix=()
if [ "$(uname -s)" = "Linux" ] && command -v setarch >/dev/null 2>&1; then
  if setarch "$(uname -m)" -R true 2>/dev/null; then
    tsan_prefix=(setarch "$(uname -m)" -R)
  fi
fi

# A hang (e.g. a deadlock in start/stop) must fail the run, not stall CI.
limit=()
if command -v timeout >/dev/null 2>&1; then limit=(timeout -k 10 "${RG_TEST_TIMEOUT:-180}"); fi

status=0
for variant in "${variants[@]}"; do
  case "$variant" in
    thread) dir=build-tsan; prefix=(${tsan_prefix[@]+"${tsan_prefix[@]}"}) ;;
    address) dir=build-asan; prefix=() ;;
    *) echo "native-tests: unknown variant '$variant' (thread|address)" >&2; exit 2 ;;
  esac
  echo "=== $variant: configure + build ($dir)"
  start=$SECONDS
  cmake -S . -B "$dir" ${generator[@]+"${generator[@]}"} \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRG_NATIVE_TESTS=ON \
    -DRG_SANITIZE="$variant" >"$dir.configure.log" 2>&1 || {
      cat "$dir.configure.log" >&2
      echo "native-tests: $variant: configure failed" >&2
      exit 1
    }
  rm -f "$dir.configure.log"
  cmake --build "$dir" --target rg_core_tests --parallel "$jobs"
  echo "=== $variant: run (built in $((SECONDS - start)) s)"
  start=$SECONDS
  set +e
  # shellcheck disable=SC2086
  ${limit[@]+"${limit[@]}"} ${prefix[@]+"${prefix[@]}"} "./$dir/rg_core_tests" ${RG_TEST_ARGS:-}
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    echo "=== $variant: passed ($((SECONDS - start)) s)"
  else
    case $rc in
      66) why="ThreadSanitizer report" ;;
      67) why="AddressSanitizer/LeakSanitizer report" ;;
      68) why="UndefinedBehaviorSanitizer report" ;;
      1) why="test failures" ;;
      124|137) why="timed out after ${RG_TEST_TIMEOUT:-180} s (hang?)" ;;
      *) why="exit code $rc" ;;
    esac
    echo "=== $variant: FAILED: $why ($((SECONDS - start)) s)" >&2
    status=1
  fi
done
exit $status
