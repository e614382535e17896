#!/bin/bash
# Responses from a raw backend: malformed or ambiguous response framing becomes a 502 (or a
# cut-off response), never a misframed one; legitimate edge cases are relayed correctly
# (close-delimited body, 103 before the final response, HEAD with Content-Length and no body).
# Faults: a close mid chunked or Content-Length body, headers then silence, more body than
# Content-Length (the extra never reaches anyone), a backend that never answers (504).
# After each case ferry keeps serving.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

RD=$WORK/respond
mkdir -p "$RD"
start_rawrecorder "$WORK/rec" -respond "$RD" || { fail "start rawrecorder"; finish; }
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$REC_ADDR" --workers 1 --upstream read_timeout=3s
start_ferry "$WORK/ferry.yaml" "$P" || finish
F=127.0.0.1:$P
URL=http://$F

set_resp() { # [METHOD] ESCAPED-TEXT — the backend's answer
    local f="$RD/response"
    if [ $# -eq 2 ]; then f="$RD/response.$1"; shift; fi
    $PY -c 'import codecs,sys; sys.stdout.buffer.write(codecs.decode(sys.argv[1],"unicode_escape").encode("latin-1"))' "$1" >"$f"
}
reset_resp() { rm -f "$RD"/response*; }
still_ok() {
    reset_resp
    local out; out=$("${CURL[@]}" -w ' %{http_code}' "$URL/?after=$1")
    assert_eq "ok 200" "$out" "$1: ferry keeps serving afterwards"
}

bad_case() { # NAME ESCAPED-RESPONSE
    log "malformed: $1"
    set_resp "$2"
    local start el code rc
    start=$(now_ms)
    code=$("${CURL[@]}" -o "$WORK/body" -w '%{http_code}' "$URL/?case=$1" 2>/dev/null); rc=$?
    el=$(( $(now_ms) - start ))
    if [ "$code" = 502 ]; then pass "$1: 502"
    elif [ $rc -ne 0 ]; then pass "$1: response cut off (curl exit $rc, status $code)"
    else fail "$1: expected 502 or a cut-off response, got $code with body [$(head -c 80 "$WORK/body")]"; fi
    assert_le "$el" 4000 "$1: answered without hanging (ms)"
    still_ok "$1"
}

bad_case dup-content-length 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk'
bad_case bad-status-code 'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok'
bad_case nul-in-header 'HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok'
bad_case not-http 'garbage garbage\r\n\r\n'
bad_case bad-chunk-size 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n'
bad_case negative-content-length 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok'
# Faults mid-response: a chunked body cut by a close, a Content-Length body cut by a close,
# headers then silence (read_timeout 3s): the client sees a cut, never a complete response.
bad_case close-during-chunked 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel<<CLOSE>>'
bad_case close-during-length 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel<<CLOSE>>'
bad_case headers-then-stall 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel'

log "more body than Content-Length"
set_resp 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA-BYTES'
out=$("${CURL[@]}" -w ' %{http_code}' "$URL/?case=overlong")
assert_eq "ok 200" "$out" "overlong: the client gets exactly the Content-Length bytes"
still_ok overlong
assert_no_match "$("${CURL[@]}" "$URL/?case=overlong-next")" 'EXTRA' "overlong: the extra bytes never reach a later response"

log "accepts and never answers"
set_resp '<<SILENT>>'
start=$(now_ms)
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/?case=silent")
el=$(( $(now_ms) - start ))
assert_eq 504 "$code" "silent backend: 504 after read_timeout"
assert_between "$el" 2800 4500 "silent backend: answered at read_timeout (3 s) (ms)"
still_ok silent

log "Content-Length and Transfer-Encoding together"
set_resp 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
out=$($RAW --body "$F" 'send:GET /?case=cl-te HTTP/1.1\r\nHost: a\r\n\r\n' read)
if grep -q '^RESP 502' <<<"$out"; then pass "CL+TE response: 502"
elif grep -q "^BODYTEXT b'hello'" <<<"$out" && ! { grep -qi '^H Content-Length: 5' <<<"$out" && grep -qi '^H Transfer-Encoding' <<<"$out"; }; then
    pass "CL+TE response: relayed as chunked without the Content-Length"
else fail "CL+TE response: neither 502 nor cleanly re-framed:"; sed 's/^/        | /' <<<"$out"; fi
still_ok cl-te

log "close-delimited response body"
set_resp 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody-until-close'
out=$("${CURL[@]}" -w ' %{http_code}' "$URL/?case=close-delimited")
assert_eq "body-until-close 200" "$out" "close-delimited body relayed whole"
still_ok close-delimited

log "103 Early Hints before the final response"
set_resp 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'
out=$($RAW --body "$F" 'send:GET /?case=103 HTTP/1.1\r\nHost: a\r\n\r\n' read)
assert_match "$out" '^RESP 200' "final 200 after a 103"
assert_match "$out" "^BODYTEXT b'final'" "final body after a 103"
still_ok early-hints

log "HEAD answered with Content-Length and no body"
reset_resp
set_resp HEAD 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'
start=$(now_ms)
out=$($RAW --timeout 4 --body "$F" 'send:HEAD /?case=head HTTP/1.1\r\nHost: a\r\n\r\n' read:HEAD \
    'send:GET /?case=after-head HTTP/1.1\r\nHost: a\r\n\r\n' read)
el=$(( $(now_ms) - start ))
assert_match "$out" '^H Content-Length: 100' "HEAD response keeps its Content-Length"
assert_eq 2 "$(grep -c '^RESP 200' <<<"$out")" "HEAD then GET on one client connection"
assert_match "$out" "^BODYTEXT b'ok'" "GET after HEAD gets its own body"
assert_le "$el" 3000 "no wait for a HEAD body (ms)"
reset_resp

alive "$FERRY_PID" && pass "ferry still running" || fail "ferry died"
finish
