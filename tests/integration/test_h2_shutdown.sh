#!/bin/bash
# Graceful stop with HTTP/2 clients: SIGTERM while h2load runs loses no request that reached
# ferry (every one answered, none cut), ferry exits 0; an h2 client with a stream in flight sees GOAWAY(2^31-1, NO_ERROR),
# then GOAWAY(last stream id, NO_ERROR), gets its response, and then the connection closes.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --global shutdown_timeout=10s \
    --listener keepalive_requests=1000000 --listener access_log="$WORK/access.log"
start_ferry "$WORK/ferry.yaml" "$P" || finish
F=127.0.0.1:$P

# The watching client: stream 1 in flight (1.5 s) when SIGTERM arrives.
$H2PEER --timeout 10 "$F" get:/sleep?ms=1500 wait waitclose:10 >"$WORK/watch.out" 2>&1 &
watch=$!
_track "$watch"
_backend_has() { [ "$(backend_stat "$B" requests)" -ge "$1" ]; }
wait_for 5 _backend_has 1 || fail "watching client's request did not reach the backend"

timeout 40 h2load -c 4 -m 10 -n 100000 -D 8 "http://$F/" >"$WORK/h2load.out" 2>&1 &
load=$!
_track "$load"
wait_for 10 _backend_has 2000 || fail "h2load did not get going"

t0=$(now_ms)
kill -TERM "$FERRY_PID"
wait_for 20 _exited "$FERRY_PID"
stop_pid "$FERRY_PID" TERM 1
log "ferry exited $(( $(now_ms) - t0 )) ms after SIGTERM with status $STOP_STATUS"
assert_eq 0 "$STOP_STATUS" "ferry exit status after SIGTERM"
FERRY_PIDS=()

wait_for 45 _exited "$load"
out=$(cat "$WORK/h2load.out")
printf '%s\n' "$out" | grep -E '^(finished|requests|status codes)' | sed 's/^/#   /'
req=$(grep -E '^requests:' <<<"$out")
# h2load's nghttp2 refuses, locally, requests it had queued but not yet sent when a GOAWAY
# arrives (even the 2^31-1 notice): those never reach ferry and are not "in flight". So the
# proof is ferry's own record: every request it received was answered in full (no 499, no
# 5xx, none cut), and h2load succeeded on exactly those it sent.
succeeded=$(sed -nE 's/.* ([0-9]+) succeeded.*/\1/p' <<<"$req")
failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$req")
served=$(grep -c ' "GET / HTTP/2.0" 200 ' "$WORK/access.log")
assert_eq 0 "$(grep -cE '" (499|5[0-9][0-9]) ' "$WORK/access.log")" "no request cut (499) or failed (5xx) at ferry"
assert_eq "$served" "$succeeded" "h2load succeeded on every request ferry answered"
assert_le "$failed" 40 "h2load's local refusals bounded by its queue (4 connections x 10)"
assert_match "$req" ' 0 timeout' "h2load: no timed-out request"
assert_match "$out" 'status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx' "h2load: only 2xx"

wait_for 15 _exited "$watch"
w=$(cat "$WORK/watch.out")
printf '%s\n' "$w" | grep -E '^(RESP|RST|GOAWAY|END|CLOSED|RESET|OPEN|TIMEOUT)' | sed 's/^/#   /'
g1=$(grep '^GOAWAY' <<<"$w" | sed -n 1p)
g2=$(grep '^GOAWAY' <<<"$w" | sed -n 2p)
assert_match "$g1" '^GOAWAY last=2147483647 code=NO_ERROR' "first GOAWAY: last-stream-id 2^31-1, NO_ERROR"
assert_match "$g2" '^GOAWAY last=1 code=NO_ERROR' "second GOAWAY: last-stream-id 1 (the real last), NO_ERROR"
assert_match "$w" '^RESP 1 200' "in-flight stream completed with 200"
assert_match "$w" '^BODY 1 5 ' "in-flight stream body complete"
order=$(grep -E '^(GOAWAY|END 1|CLOSED|RESET)' <<<"$w" | awk '{print $1}' | xargs)
assert_match "$order" '^GOAWAY GOAWAY END (CLOSED|RESET)$|^GOAWAY END GOAWAY (CLOSED|RESET)$' "order: GOAWAY, GOAWAY, response, close (got: $order)"
assert_match "$w" '^CLOSED ' "connection closed cleanly (FIN) after the response"
finish
