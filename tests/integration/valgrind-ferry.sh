#!/bin/sh
# valgrind-ferry.sh — stands in for the ferry binary (FERRY=this script) so that integration
# tests run ferry under valgrind memcheck: `make check-valgrind`. exec keeps the pid the
# tests signal and wait for. Any memory error or definite leak makes ferry exit with status
# 99, which the test's `finish` reports; valgrind's report goes to ferry's log (stderr).
#
# FERRY_BIN: the real binary (default: src/ferry of this tree).
here=$(cd "$(dirname "$0")" && pwd)
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --num-callers=30 --child-silent-after-fork=yes \
    "${FERRY_BIN:-$here/../../src/ferry}" "$@"
