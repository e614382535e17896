#!/bin/bash
# Pool hygiene and safe retries, deterministically:
#  - an idle upstream connection the backend closed (IdleTimeout) is evicted: a POST sent
#    after the backend closed it succeeds on a new connection (reused=0), no retry needed;
#  - a connection the backend marked "Connection: close" is not reused;
#  - an idempotent GET whose reused connection is reset before the first response byte is
#    retried once (backend sees it twice, access log retries=1); a POST in the same situation
#    is never retried (backend sees it once) and the client gets 502.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend -idle-timeout 1s || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --workers 1 \
    --access-log "$WORK/access.log" --upstream keepalive_timeout=60s --upstream retries=1
start_ferry "$WORK/ferry.yaml" "$P" || finish
URL=http://127.0.0.1:$P
ALOG=$WORK/access.log

logline() { # MARKER -> the access log line of the request whose URL contains MARKER
    wait_grep "$ALOG" "$1" 5 && grep -- "$1" "$ALOG" | tail -n1
}
_active_is() { [ "$(backend_stat "$B" active)" -le "$1" ]; }

log "eviction of a connection the backend closed while idle"
assert_eq 200 "$(http_status "$URL/?m=warm1")" "warm-up request"
# The backend closes the idle connection after 1 s; wait until it has (its own count).
wait_for 5 _active_is 1 || fail "backend did not close its idle connection"   # 1 = the /stats conn
out=$("${CURL[@]}" -o /dev/null -w '%{http_code}' --data-binary 'after-idle' "$URL/echo?m=post-after-idle")
assert_eq 200 "$out" "POST after the backend closed the idle connection succeeds"
line=$(logline 'm=post-after-idle')
assert_eq 0 "$(alog_field "$line" reused)" "that POST went over a new connection (reused=0)"
assert_eq 0 "$(alog_field "$line" retries)" "and needed no retry"

log "Connection: close from the backend"
assert_eq 200 "$(http_status "$URL/close?m=close1")" "GET /close"
out=$("${CURL[@]}" -o /dev/null -w '%{http_code}' --data-binary 'x' "$URL/echo?m=post-after-close")
assert_eq 200 "$out" "POST after a Connection: close response succeeds"
line=$(logline 'm=post-after-close')
assert_eq 0 "$(alog_field "$line" reused)" "the closed connection was not reused (reused=0)"

out=$($RAW "127.0.0.1:$P" 'send:GET /close?m=close2 HTTP/1.1\r\nHost: a\r\n\r\n' read 'send:GET /?m=after-close2 HTTP/1.1\r\nHost: a\r\n\r\n' read)
assert_eq 2 "$(grep -c '^RESP 200' <<<"$out")" "the backend's Connection: close does not end the client connection"

log "client gives up while the backend is still answering: no stale response later"
"${CURL[@]}" --max-time 0.4 -o /dev/null "$URL/sleep?ms=1200&m=abandoned" 2>/dev/null
assert_eq 28 "$?" "client timed out (curl exit 28)"
bad=0
for i in 1 2 3 4 5 6; do
    out=$("${CURL[@]}" --data-binary "fresh-$i" "$URL/echo?m=after-abort-$i")
    [ "$out" = "fresh-$i" ] || { bad=$((bad + 1)); log "request $i got [$out]"; }
done
assert_eq 0 "$bad" "requests right after the abort get their own responses (no stale 'slept')"
_slept_done() { [ "$(backend_stat "$B" active)" -le 2 ]; }
wait_for 3 _slept_done

log "reset before the first byte on a reused connection: GET is retried once"
assert_eq 200 "$(http_status "$URL/?m=warm2")" "warm-up request"
before=$(backend_stat "$B" requests)
out=$(http_status "$URL/reset?when=before&m=get-reset")
after=$(backend_stat "$B" requests)
assert_eq 502 "$out" "GET that fails twice gets 502"
assert_eq 2 "$(( after - before ))" "backend saw the GET twice (original + one retry)"
line=$(logline 'm=get-reset')
log "$line"
assert_eq 1 "$(alog_field "$line" retries)" "access log retries=1"
rr=$(alog_field "$line" retry_reason)
if [ -n "$rr" ] && [ "$rr" != none ] && [ "$rr" != - ]; then pass "access log names a retry_reason ($rr)"
else fail "access log retry_reason should name why, got [$rr]"; fi

log "an idempotent PUT with a body: retried with the whole body again"
assert_eq 200 "$(http_status "$URL/?m=warm3")" "warm-up request"
head -c 20000 /dev/urandom >"$WORK/put.bin"
before=$(backend_stat "$B" requests)
t0=$(now_ms)
# /reset reads the whole body before resetting: a retry that sent less than Content-Length
# would leave the backend waiting, and the request would end on read_timeout, not at once.
out=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$WORK/put.bin" "$URL/reset?when=before&m=put-reset")
t1=$(now_ms)
after=$(backend_stat "$B" requests)
assert_eq 502 "$out" "PUT that fails twice gets 502"
assert_eq 2 "$(( after - before ))" "backend saw the PUT twice (original + one retry)"
assert_le "$(( t1 - t0 ))" 3000 "the retry carried the whole body (no wait for missing bytes)"
assert_eq 1 "$(alog_field "$(logline 'm=put-reset')" retries)" "access log retries=1 for the PUT"

log "same for a POST: never retried"
assert_eq 200 "$(http_status "$URL/?m=warm3")" "warm-up request"
before=$(backend_stat "$B" requests)
out=$("${CURL[@]}" -o /dev/null -w '%{http_code}' --data-binary 'once' "$URL/reset?when=before&m=post-reset")
after=$(backend_stat "$B" requests)
assert_eq 502 "$out" "POST reset before the first byte gets 502"
assert_eq 1 "$(( after - before ))" "backend saw the POST exactly once"
line=$(logline 'm=post-reset')
assert_eq 0 "$(alog_field "$line" retries)" "access log retries=0 for the POST"

log "a reset after response bytes were sent is never retried (even GET)"
before=$(backend_stat "$B" requests)
"${CURL[@]}" -o /dev/null "$URL/reset?m=get-midreset" 2>/dev/null
after=$(backend_stat "$B" requests)
assert_eq 1 "$(( after - before ))" "backend saw the GET once"
assert_eq 200 "$(http_status "$URL/?m=final")" "ferry keeps serving"
finish
