#!/bin/sh
# Configuration checking through the real binary: `ferry -t -c FILE`.
#
# Every tests/integration/configs/invalid/*.yaml starts with a comment
#     # expect: LINE:COL: text
# and must make ferry exit 1 with "FILE:LINE:COL: text" on stderr (the position exact, the text a
# substring of the message, the message in the form "...; expected ..."; a "ferry: " prefix
# before FILE is allowed). The shipped default
# config, the shipped examples and tests/integration/configs/valid/*.yaml must exit 0.
#
# Prints "ok - name" / "not ok - name" per case; exits 1 if any case failed.
# FERRY=path overrides the binary (default: src/ferry in the repository).

set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 2
ferry=${FERRY:-src/ferry}
if [ ! -x "$ferry" ]; then
    echo "not ok - $ferry is not built (run make)"
    exit 1
fi

failed=0
n=0
errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT INT TERM

pass() { n=$((n + 1)); echo "ok - $1"; }
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok - $1"; shift; for l in "$@"; do echo "#   $l"; done; }

for f in tests/integration/configs/invalid/*.yaml; do
    name="invalid/$(basename "$f" .yaml)"
    expect=$(sed -n '1s/^# expect: //p' "$f")
    case $expect in
    [0-9]*:[0-9]*:\ *) ;;
    *) fail "$name" "first line must be '# expect: LINE:COL: text'"; continue ;;
    esac
    "$ferry" -t -c "$f" >/dev/null 2>"$errfile" </dev/null
    rc=$?
    got=$(cat "$errfile")
    if [ "$rc" -ne 1 ]; then
        fail "$name" "exit status $rc, want 1" "stderr: $got"
    elif ! grep -qF -- "$f:$expect" "$errfile"; then
        fail "$name" "want: $f:$expect" "got:  $got"
    elif ! grep -qE -- "(^|: )$f:[0-9]+:[0-9]+: .*; expected " "$errfile"; then
        fail "$name" "message not in the form 'FILE:LINE:COL: ...; expected ...'" "got: $got"
    else
        pass "$name"
    fi
done

for f in conf/ferry.yaml conf/examples/*.yaml tests/integration/configs/valid/*.yaml; do
    [ -e "$f" ] || continue
    name="valid/$f"
    "$ferry" -t -c "$f" >/dev/null 2>"$errfile" </dev/null
    rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$name"
    else
        fail "$name" "exit status $rc, want 0" "stderr: $(cat "$errfile")"
    fi
done

# A file that does not exist is an error too, named in the message.
"$ferry" -t -c tests/integration/configs/does-not-exist.yaml >/dev/null 2>"$errfile" </dev/null
rc=$?
if [ "$rc" -eq 1 ] && grep -qF "tests/integration/configs/does-not-exist.yaml" "$errfile"; then
    pass "missing-file"
else
    fail "missing-file" "exit status $rc, want 1 with the path on stderr" "stderr: $(cat "$errfile")"
fi

echo "# $((n - failed))/$n passed"
[ "$failed" -eq 0 ]
