#!/bin/bash
# Graceful stop on SIGTERM: the listener closes at once (new connections refused), an
# in-flight request completes with 200, idle keep-alive connections are closed, and ferry
# exits 0 well before shutdown_timeout.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --global shutdown_timeout=10s
start_ferry "$WORK/ferry.yaml" "$P" || finish
URL=http://127.0.0.1:$P

assert_eq 200 "$(http_status "$URL/")" "serving before the stop"

# An idle keep-alive client connection, watched until ferry closes it.
$RAW "127.0.0.1:$P" 'send:GET / HTTP/1.1\r\nHost: a\r\n\r\n' read waitclose:15 >"$WORK/idle.out" 2>&1 &
idle=$!
_track "$idle"
wait_grep "$WORK/idle.out" '^RESP 200' 5 || fail "idle client did not get its response"

# The in-flight request.
curl -sS --max-time 10 -o "$WORK/inflight.body" -w '%{http_code}' "$URL/sleep?ms=1500" >"$WORK/inflight.status" 2>"$WORK/inflight.err" &
inflight=$!
_track "$inflight"
_backend_has() { [ "$(backend_stat "$B" requests)" -ge "$1" ]; }
wait_for 5 _backend_has 2 || fail "in-flight request did not reach the backend"

t0=$(now_ms)
kill -TERM "$FERRY_PID"
if wait_for 1 port_closed "$P"; then
    pass "new connections refused within 1 s of SIGTERM ($(( $(now_ms) - t0 )) ms)"
else
    fail "port $P still accepts connections 1 s after SIGTERM"
fi
refused_at=$(( $(now_ms) - t0 ))

wait "$inflight"
done_at=$(( $(now_ms) - t0 ))
assert_eq 200 "$(cat "$WORK/inflight.status")" "in-flight request completed with 200 ($(cat "$WORK/inflight.err"))"
assert_eq slept "$(cat "$WORK/inflight.body")" "in-flight response body complete"
if [ "$refused_at" -lt "$done_at" ]; then
    pass "listener closed ($refused_at ms) before the in-flight request finished ($done_at ms)"
else
    fail "listener closed ($refused_at ms) only after the in-flight request finished ($done_at ms)"
fi

if wait_for 8 _exited "$FERRY_PID"; then
    wait "$FERRY_PID"; st=$?
    assert_eq 0 "$st" "ferry exit status after SIGTERM"
    assert_le "$(( $(now_ms) - t0 ))" 5000 "ferry exited promptly (did not wait for idle connections or shutdown_timeout) (ms)"
else
    fail "ferry still running 8 s after SIGTERM"
fi
wait_for 3 _exited "$idle"
assert_match "$(cat "$WORK/idle.out")" '^CLOSED' "idle keep-alive connection was closed by ferry"
log "error log tail:"; tail -n 5 "$FERRY_LOG" | sed 's/^/#   /'

# SIGTERM during a slow streaming response (a 20 MB body read at 8 MB/s): it completes within
# shutdown_timeout, whole, and ferry exits 0 after it.
P=$(pick_port)
make_config "$WORK/stream.yaml" --port "$P" --backend "$B" --global shutdown_timeout=10s
start_ferry "$WORK/stream.yaml" "$P" || finish
want=$("${CURL[@]}" "http://$B/big?bytes=20000000" | sha256sum | cut -d' ' -f1)
before=$(backend_stat "$B" requests)
curl -sS --max-time 15 --limit-rate 8M "http://127.0.0.1:$P/big?bytes=20000000" 2>"$WORK/stream.err" \
    | sha256sum | cut -d' ' -f1 >"$WORK/stream.sum" &
spid=$!
_track "$spid"
_streaming() { [ "$(backend_stat "$B" requests)" -ge "$1" ]; }
wait_for 5 _streaming "$(( before + 1 ))" || fail "the streaming request did not reach the backend"
term_at=$(now_ms)
kill -TERM "$FERRY_PID"
wait_for 15 _exited "$spid" || fail "streaming client did not finish"
wait "$spid"
assert_eq "$want" "$(cat "$WORK/stream.sum")" "the streamed 20 MB response completed whole after SIGTERM ($(cat "$WORK/stream.err"))"
if wait_for 12 _exited "$FERRY_PID"; then
    wait "$FERRY_PID"; st=$?
    assert_eq 0 "$st" "ferry exit status after the streamed response"
    took=$(( $(now_ms) - term_at ))
    assert_ge "$took" 1000 "ferry waited for the streaming response (ms)"
    assert_le "$took" 10500 "... and no longer than shutdown_timeout (ms)"
else
    fail "ferry still running after the streamed response"
fi
finish
