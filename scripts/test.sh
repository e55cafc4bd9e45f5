#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The whole test suite, from a fresh Debian 12 machine: installs what is missing, then
# builds and runs every test in four build trees:
#   build       RelWithDebInfo: library, tools, examples, benchmarks' smoke test, kernel
#   build-asan  AddressSanitizer + UndefinedBehaviorSanitizer
#   build-tsan  ThreadSanitizer
#   build-fuzz  clang + libFuzzer: short fuzz runs of everything that parses shared memory
# and, with the default tree, the Python package's tests (pytest), counted in the summary.
# Usage: scripts/test.sh [PRESET...]   (default: default asan tsan fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

presets=("$@")
((${#presets[@]})) || presets=(default asan tsan fuzz)
jobs=$(nproc)
total_pass=0 total_fail=0 total_skip=0 failed_presets=()
for preset in "${presets[@]}"; do
  echo "=== $preset: configure and build"
  start=$SECONDS
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: test"
  log=$(mktemp)
  set +e
  ctest --preset "$preset" -j "$jobs" --timeout 600 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  summary=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1 || true)
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
  failed=$(sed -E 's/.*, ([0-9]+) tests failed.*/\1/' <<<"$summary")
  if [[ -z "$summary" ]]; then total=0 failed=1; fi
  # ctest counts a skipped test as not failed; count it apart, never as passed.
  skipped=$(grep -cE "^\s*[0-9]+ - .*\(Skipped\)" "$log" || true)
  total_pass=$((total_pass + total - failed - skipped))
  total_fail=$((total_fail + failed))
  total_skip=$((total_skip + skipped))
  ((rc == 0)) || failed_presets+=("$preset")
  echo "=== $preset: $((total - failed - skipped)) of $total passed, $skipped skipped, in $((SECONDS - start)) s"
  rm -f "$log"
done
# The Python package's tests (pytest), against the default tree's library and programs, counted
# in the same summary. pytest's exit code 5 ("no tests collected") is a failure, never a pass.
for preset in "${presets[@]}"; do
  [[ $preset == default ]] || continue
  echo "=== python: pytest python/tests"
  python=/usr/bin/python3
  [[ -x $python ]] || python=python3
  log=$(mktemp)
  set +e
  VIPC_BUILD_DIR=$PWD/build VIPC_LIBRARY=$PWD/build/src/libveridian_ipc.so \
    PYTHONDONTWRITEBYTECODE=1 timeout 600 "$python" -m pytest -p no:cacheprovider -q \
    python/tests 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  line=$(grep -E "^=*\s*[0-9]+ (passed|failed|skipped|error|deselected)|no tests ran" "$log" | tail -1 || true)
  count() { grep -oE "[0-9]+ $1" <<<"$line" | grep -oE "^[0-9]+" || echo 0; }
  py_pass=$(count passed)
  py_fail=$(($(count failed) + $(count "errors?")))
  py_skip=$(count skipped)
  if ((rc == 5)); then
    echo "=== python: pytest collected no tests: counted as a failure"
    py_fail=$((py_fail + 1))
  elif ((rc != 0 && py_fail == 0)); then
    echo "=== python: pytest exited $rc: counted as a failure"
    py_fail=1
  fi
  total_pass=$((total_pass + py_pass))
  total_fail=$((total_fail + py_fail))
  total_skip=$((total_skip + py_skip))
  ((rc == 0)) || failed_presets+=("python")
  echo "=== python: $py_pass passed, $py_fail failed, $py_skip skipped"
  rm -f "$log"
done

echo
if ((${#failed_presets[@]})); then
  echo "FAILED in: ${failed_presets[*]}"
fi
echo "all: $total_pass passed, $total_fail failed, $total_skip skipped"
((${#failed_presets[@]} == 0 && total_fail == 0))
