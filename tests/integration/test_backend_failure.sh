#!/bin/bash
# Backend failures: killed backend -> 502 (short body, error log names the server) and
# recovery when it comes back on the same port; a reset mid-response fails the client quickly
# and ferry keeps serving; nothing listening -> 502; read_timeout -> 504; a full connection
# limit with a queue timeout -> 503. A backend killed while ferry holds idle connections to
# it teaches no idle timeout (a crash closes them all at once; it is not a timeout).
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

BPORT=$(pick_port)
start_backend --port "$BPORT" || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --access-log "$WORK/access.log" \
    --upstream connect_timeout=2s --upstream read_timeout=1s
start_ferry "$WORK/ferry.yaml" "$P" || finish
F1_LOG=$FERRY_LOG
URL=http://127.0.0.1:$P

assert_eq 200 "$(http_status "$URL/")" "backend up: 200"

log "backend killed"
stop_pid "$BACKEND_PID" KILL
wait_for 5 port_closed "$BPORT" || fail "backend port still open after kill"
start=$(now_ms)
out=$("${CURL[@]}" -o "$WORK/502.body" -w '%{http_code}' "$URL/" 2>&1)
el=$(( $(now_ms) - start ))
assert_eq 502 "$out" "backend down: 502"
assert_le "$el" 3000 "502 answered quickly (ms)"
size=$(stat -c %s "$WORK/502.body")
assert_between "$size" 1 1024 "502 has a short body (bytes)"
if wait_grep "$F1_LOG" "127\\.0\\.0\\.1:$BPORT" 5; then
    pass "error log names the upstream server 127.0.0.1:$BPORT"
    log "$(grep "127.0.0.1:$BPORT" "$F1_LOG" | tail -n 2)"
else
    fail "error log does not name 127.0.0.1:$BPORT"; tail -n 10 "$F1_LOG" | sed 's/^/        | /'
fi
out=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST --data-binary 'x' "$URL/echo")
assert_eq 502 "$out" "backend down: POST also 502"

log "backend restarted on the same port"
start_backend --port "$BPORT" || fail "restart backend on $BPORT"
_is200() { [ "$(http_status "$URL/")" = 200 ]; }
if wait_for 10 _is200; then pass "requests succeed again after the backend came back"
else fail "still no 200 10 s after the backend came back"; fi
ok=0; for i in 1 2 3 4 5; do [ "$(http_status "$URL/")" = 200 ] && ok=$((ok + 1)); done
assert_eq 5 "$ok" "5 of 5 requests succeed after recovery"

log "reset mid-response"
start=$(now_ms)
"${CURL[@]}" -o "$WORK/reset.body" "$URL/reset" 2>"$WORK/reset.err"
rc=$?
el=$(( $(now_ms) - start ))
assert_ne 0 "$rc" "curl reports the broken response (exit $rc: $(head -c 120 "$WORK/reset.err"))"
assert_le "$el" 4000 "broken response noticed quickly, no hang (ms)"
assert_eq 200 "$(http_status "$URL/")" "ferry serves the next request after a reset"
out=$($RAW "127.0.0.1:$P" 'send:GET /reset HTTP/1.1\r\nHost: a\r\n\r\n' read)
assert_match "$out" '^(EOF|RESET|CLOSED)' "raw client: connection ends inside the response"
assert_match "$out" '^H Content-Length: 100000' "raw client: headers of the partial response were relayed"

log "reset before the first response byte"
start=$(now_ms)
out=$(http_status "$URL/reset?when=before")
el=$(( $(now_ms) - start ))
assert_eq 502 "$out" "reset before any response byte: 502"
assert_le "$el" 4000 "answered quickly (ms)"
assert_eq 200 "$(http_status "$URL/")" "ferry serves the next request"

log "read_timeout=1s vs /sleep?ms=3000"
start=$(now_ms)
out=$(http_status "$URL/sleep?ms=3000")
el=$(( $(now_ms) - start ))
assert_eq 504 "$out" "slow backend: 504"
assert_between "$el" 900 2900 "504 after about read_timeout (ms)"
assert_eq 200 "$(http_status "$URL/sleep?ms=200")" "a fast enough request still works"
alive "$FERRY_PID" && pass "ferry still running" || fail "ferry died"

log "backend killed and restarted while requests keep flowing"
_load_loop() { # FILE MS — sequential requests for MS milliseconds: "status curl-exit" lines
    local end=$(( $(now_ms) + $2 ))
    while [ "$(now_ms)" -lt "$end" ]; do
        curl -s --max-time 5 -o /dev/null -w '%{http_code} %{exitcode}\n' "$URL/" >>"$1" 2>/dev/null
    done
}
loops=()
for i in 1 2 3; do _load_loop "$WORK/load.$i" 5000 & loops+=($!); done
_lines_in() { [ "$(cat "$WORK"/load.* 2>/dev/null | wc -l)" -ge "$1" ]; }
wait_for 5 _lines_in 30 || fail "load loops did not start"
stop_pid "$BACKEND_PID" KILL
_saw502() { grep -q '^502 ' "$WORK"/load.* 2>/dev/null; }
wait_for 5 _saw502 || fail "no 502 seen while the backend was down"
start_backend --port "$BPORT" || fail "restart backend on $BPORT"
n_at_restart=$(cat "$WORK"/load.* | wc -l)
for p in "${loops[@]}"; do wait "$p"; done
all=$(cat "$WORK"/load.*)
log "statuses under load: $(sort <<<"$all" | uniq -c | xargs)"
assert_eq "" "$(grep -vE '^(200|502) 0$' <<<"$all" | sort | uniq -c | xargs)" "every request got a complete 200 or 502 (no hang, no reset, no other status)"
assert_gt "$(grep -c '^200 0$' <<<"$all")" 0 "200s before and after the outage"
for i in 1 2 3; do
    assert_eq "200 0" "$(tail -n1 "$WORK/load.$i")" "load loop $i ends with 200s after the restart"
done
assert_gt "$(( $(wc -l <<<"$all") - n_at_restart ))" 10 "requests went on after the restart"
alive "$FERRY_PID" && pass "ferry still running" || fail "ferry died"

log "nothing listening at all"
DEAD=$(pick_port)
P2=$(pick_port)
make_config "$WORK/dead.yaml" --port "$P2" --backend "127.0.0.1:$DEAD" --upstream connect_timeout=2s
start_ferry "$WORK/dead.yaml" "$P2" || finish
start=$(now_ms)
out=$("${CURL[@]}" -o "$WORK/dead.body" -w '%{http_code}' "http://127.0.0.1:$P2/" 2>&1)
el=$(( $(now_ms) - start ))
assert_eq 502 "$out" "no listener: 502"
assert_le "$el" 3000 "connection refused answered quickly (ms)"
assert_between "$(stat -c %s "$WORK/dead.body")" 1 1024 "502 body is short (bytes)"

log "connection limit full: 503 after queue_timeout"
start_backend || { fail "start backend"; finish; }
P3=$(pick_port)
make_config "$WORK/queue.yaml" --port "$P3" --backend "$BACKEND_ADDR" --workers 1 \
    --upstream max_connections=1 --upstream queue_timeout=500ms --upstream read_timeout=10s
start_ferry "$WORK/queue.yaml" "$P3" || finish
"${CURL[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/sleep?ms=2500" >"$WORK/slow.status" 2>/dev/null &
slow=$!
_backend_busy() { [ "$(backend_stat "$BACKEND_ADDR" requests)" -ge 1 ]; }
wait_for 5 _backend_busy || fail "slow request did not reach the backend"
start=$(now_ms)
out=$(http_status "http://127.0.0.1:$P3/")
el=$(( $(now_ms) - start ))
assert_eq 503 "$out" "second request while the only connection is busy: 503"
assert_between "$el" 400 2000 "503 after about queue_timeout (ms)"
wait "$slow"
assert_eq 200 "$(cat "$WORK/slow.status")" "the request holding the connection completes"
assert_eq 200 "$(http_status "http://127.0.0.1:$P3/")" "after it completes, requests go through"
log "crash with idle connections: nothing learned"
start_backend || { fail "start backend"; finish; }
P4=$(pick_port)
make_config "$WORK/crash.yaml" --port "$P4" --backend "$BACKEND_ADDR" --workers 1
start_ferry "$WORK/crash.yaml" "$P4" || finish
out=$("$BIN/loadclient" -url "http://127.0.0.1:$P4/" -c 6 -n 60 -deadline 20s 2>&1)
assert_match "$out" "ok=60 err=0" "6 pooled connections made"
_idle_for() { [ $(( $(now_ms) - t_idle )) -ge 700 ]; }
t_idle=$(now_ms)
wait_for 5 _idle_for   # idle ~700 ms, well below the 60 s keepalive_timeout
stop_pid "$BACKEND_PID" KILL
start_backend --port "${BACKEND_ADDR##*:}" || { fail "restart backend"; finish; }
assert_eq 200 "$(http_status "http://127.0.0.1:$P4/")" "after the restart: 200"
assert_no_match "$(cat "$FERRY_LOG")" "learned idle timeout" "the crash taught no idle timeout"
finish
