#!/bin/bash
# Request smuggling and malformed framing: each ambiguous or malformed request is answered
# 400 (501 for an unknown transfer coding) and the connection is closed; a request pipelined
# behind it is never processed; and the raw backend behind ferry (rawrecorder, which records
# the exact bytes it gets) never sees more request lines than the legitimate requests sent.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_rawrecorder "$WORK/rec" || { fail "start rawrecorder"; finish; }
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$REC_ADDR"
start_ferry "$WORK/ferry.yaml" "$P" || finish
F=127.0.0.1:$P
LEGIT=0

legit() { # a well-formed request that must reach the backend
    local out
    out=$($RAW "$F" 'send:GET /legit HTTP/1.1\r\nHost: a\r\n\r\n' read)
    assert_match "$out" '^RESP 200' "control request answered 200"
    LEGIT=$((LEGIT + 1))
}

legit_posts() { # well-formed bodies, both framings: the backend must parse them exactly
    local out
    out=$($RAW --body "$F" 'send:POST /legit-cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' read \
        'send:POST /legit-chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n' read \
        'send:GET /legit HTTP/1.1\r\nHost: a\r\n\r\n' read)
    assert_eq 3 "$(grep -c '^RESP 200' <<<"$out")" "legitimate POSTs (Content-Length, chunked) and a GET on one connection"
    LEGIT=$((LEGIT + 3))
}

# The request pipelined after each bad one: must never be processed.
SMUG='GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'
H='Host: a\r\n'

# name | allowed statuses | raw request (escaped)
CASES=(
"CL.TE|400|POST /cl-te HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX"
"TE.CL|400|POST /te-cl HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n"
"duplicate differing Content-Length|400|POST /dup-cl HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
"Content-Length list|400|POST /cl-list HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello!"
"Content-Length with sign|400|POST /cl-sign HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello"
"Transfer-Encoding: xchunked|400 501|POST /xchunked HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
"Transfer-Encoding: chunked, identity|400 501|POST /chunked-identity HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
"Transfer-Encoding on HTTP/1.0 plus CL|400|POST /te-10 HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
"obs-fold|400|GET /obs-fold HTTP/1.1\r\n${H}X-Folded: a\r\n b\r\n\r\n"
"obs-fold on Transfer-Encoding|400 501|POST /obs-fold-te HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"
"bare CR in header|400|GET /bare-cr HTTP/1.1\r\n${H}X-Bad: a\rb\r\n\r\n"
"bare CR as line end|400|GET /bare-cr2 HTTP/1.1\r${H}\r\n"
"NUL in header value|400|GET /nul HTTP/1.1\r\n${H}X-Bad: a\x00b\r\n\r\n"
"space before colon|400|POST /space-colon HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
"two Host headers|400|GET /two-hosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
"no Host in HTTP/1.1|400|GET /no-host HTTP/1.1\r\n\r\n"
"bad chunk size|400|POST /bad-chunk HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
)

legit
legit_posts
for c in "${CASES[@]}"; do
    name=${c%%|*}; rest=${c#*|}
    allowed=${rest%%|*}; payload=${rest#*|}
    log "case: $name"
    out=$($RAW --timeout 3 "$F" "send:$payload$SMUG" readall:3)
    statuses=$(grep '^RESP' <<<"$out" | awk '{print $2}' | xargs)
    first=${statuses%% *}
    if [[ " $allowed " == *" $first "* ]] && [ -n "$first" ]; then
        pass "$name: answered $first"
    else
        fail "$name: expected one of [$allowed], got [${statuses:-no response}]"
        printf '%s\n' "$out" | head -n 12 | sed 's/^/        | /'
    fi
    assert_eq 1 "$(grep -c '^RESP' <<<"$out")" "$name: exactly one response (the pipelined request is not processed)"
    assert_match "$out" '^(CLOSED|RESET)' "$name: connection closed"
done
legit

log "what the backend saw"
wait_lines "$WORK/rec/requests.log" "$LEGIT" 3
sed 's/^/#   /' "$WORK/rec/requests.log"
seen=$(wc -l <"$WORK/rec/requests.log")
assert_le "$seen" $(( LEGIT + 1 )) "backend saw at most the legitimate requests (+1 for a bad-chunk head already forwarded)"
assert_eq 0 "$(grep -c 'smuggled\|GPOST' "$WORK/rec/requests.log")" "no smuggled request line reached the backend"
assert_eq 0 "$(grep -cE '/(cl-te|te-cl|dup-cl|cl-list|cl-sign|xchunked|chunked-identity|te-10|obs-fold|obs-fold-te|bare-cr|bare-cr2|nul|space-colon|two-hosts|no-host) ' "$WORK/rec/requests.log")" \
    "no rejected request was forwarded"
lines=$(cat "$WORK"/rec/conn-*.bin 2>/dev/null | grep -acE '^[A-Z]+ [^ ]+ HTTP/1\.[01]'$'\r''?$')
assert_le "$lines" $(( LEGIT + 1 )) "request lines in the raw recorded bytes"
hosts=$(cat "$WORK"/rec/conn-*.bin 2>/dev/null | grep -aciE '^host:')
assert_eq "$seen" "$hosts" "exactly one Host header per forwarded request"
alive "$FERRY_PID" && pass "ferry still running" || fail "ferry died"
finish
