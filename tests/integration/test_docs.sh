#!/bin/bash
# The documentation and what `make install` puts in place: both man pages render with
# `man -l` and groff reports no warning; the shipped configuration and the examples pass
# `ferry -t`; `make install DESTDIR=...` installs the binary, the man pages, the systemd
# units, the logrotate file and a default configuration that is valid, and keeps an
# existing configuration.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$IT_DIR/../.." && pwd)

for page in man/ferry.8 man/ferry.yaml.5; do
    w=$(groff -man -ww -z "$ROOT/$page" 2>&1)
    assert_eq "" "$w" "groff -man -ww: no warning for $page"
    out=$(MANWIDTH=80 man -l "$ROOT/$page" 2>&1 >/dev/null)
    assert_eq "" "$out" "man -l renders $page without a message"
    n=$(MANWIDTH=80 man -l "$ROOT/$page" 2>/dev/null | wc -l)
    assert_ge "$n" 50 "man -l $page renders a page ($n lines)"
done
assert_contains "$(MANWIDTH=80 man -l "$ROOT/man/ferry.8" 2>/dev/null)" "SIGHUP" "ferry(8) documents SIGHUP"
assert_contains "$(MANWIDTH=100 man -l "$ROOT/man/ferry.yaml.5" 2>/dev/null)" "max_concurrent_streams" \
    "ferry.yaml(5) documents the HTTP/2 upstream keys"

for f in "$ROOT"/conf/ferry.yaml "$ROOT"/conf/examples/*.yaml; do
    [ -f "$f" ] || continue
    out=$("$FERRY" -t -c "$f" 2>&1)
    assert_eq 0 $? "ferry -t accepts ${f#$ROOT/} ($out)"
done

D="$WORK/destdir"
if out=$(make -s -C "$ROOT" install DESTDIR="$D" 2>&1); then pass "make install DESTDIR=..."
else fail "make install: $out"; fi
for f in $(cd "$D" && find . -type f | sort); do log "installed ${f#.}"; done
bin=$(find "$D" -type f -name ferry -perm -u+x | head -n1)
assert_ne "" "$bin" "the binary is installed"
for want in man8/ferry.8 man5/ferry.yaml.5 ferry/ferry.yaml ferry.service ferry.socket logrotate.d/ferry; do
    assert_ne "" "$(find "$D" -path "*$want" | head -n1)" "installed: $want"
done
cfg=$(find "$D" -path '*ferry/ferry.yaml' | head -n1)
[ -n "$bin" ] && [ -n "$cfg" ] && { out=$("$bin" -t -c "$cfg" 2>&1); assert_eq 0 $? "the installed binary accepts the installed configuration ($out)"; }
unit=$(find "$D" -name ferry.service | head -n1)
assert_match "$(cat "$unit" 2>/dev/null)" 'ExecReload=/bin/kill -HUP \$MAINPID' "the unit reloads with SIGHUP"
assert_match "$(cat "$unit" 2>/dev/null)" 'Type=notify' "the unit is Type=notify"
# A second install keeps an edited configuration.
echo "# edited" >>"$cfg"
make -s -C "$ROOT" install DESTDIR="$D" >/dev/null 2>&1
assert_contains "$(tail -n1 "$cfg")" "# edited" "make install keeps an existing configuration"
finish
