#!/bin/bash
# run.sh — ferry's integration suite. Builds the Go peers (cached in .work/bin), then runs
# every tests/integration/test_*.sh in its own process with its own work directory
# (.work/<test>/), printing "ok - NAME" / "not ok - NAME" and, last, "N passed, M failed".
#
#   tests/integration/run.sh [NAME-SUBSTRING...]     # run all, or only matching tests
#
# Environment: FERRY (binary, default src/ferry), TEST_TIMEOUT (seconds per test, default 180),
# VERBOSE=1 (print each test's full output).
set -u
IT_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$IT_DIR/../.." && pwd)
export FERRY=${FERRY:-$ROOT/src/ferry}
TEST_TIMEOUT=${TEST_TIMEOUT:-180}

cd "$IT_DIR"
TEST_NAME=run WORK="$IT_DIR/.work" . "$IT_DIR/lib.sh"   # for build_peers only
trap - EXIT INT TERM

if ! build_peers; then
    echo "not ok - build Go peers"
    echo "0 passed, 1 failed"
    exit 1
fi
if [ ! -x "$FERRY" ]; then
    echo "# warning: $FERRY does not exist; every test will fail (run make first)"
fi

passed=0
failed=0
failed_names=()
for t in "$IT_DIR"/test_*.sh; do
    name=$(basename "$t" .sh)
    if [ $# -gt 0 ]; then
        sel=0
        for pat in "$@"; do [[ $name == *$pat* ]] && sel=1; done
        [ $sel = 1 ] || continue
    fi
    work="$IT_DIR/.work/$name"
    rm -rf "$work"
    mkdir -p "$work"
    start=$(date +%s)
    ( cd "$work" && TEST_NAME=$name WORK=$work exec timeout -k 10 "$TEST_TIMEOUT" bash "$t" ) \
        >"$work/output.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ "${VERBOSE:-0}" = 1 ]; then sed 's/^/    /' "$work/output.log"; fi
    if [ $rc -eq 0 ]; then
        echo "ok - $name (${secs}s)"
        passed=$((passed + 1))
    else
        [ $rc -eq 124 ] && echo "# $name: timed out after ${TEST_TIMEOUT}s"
        echo "not ok - $name (${secs}s, exit $rc; log: ${work#$ROOT/}/output.log)"
        grep -E '^  FAIL:|^        \|' "$work/output.log" | head -n 40 | sed 's/^/#   /'
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
done

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
