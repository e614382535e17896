#!/bin/bash
# Upstream pool limits, counted on the backend: keepalive_requests per connection, idle
# keepalive_timeout, the backend's "Keep-Alive: timeout=N" hint, and the idle cap after a
# burst: keepalive N with keepalive_strict, the burst's peak by default.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

active() { backend_stat "$1" active; }            # includes the /stats connection itself
_active_le() { [ "$(active "$1")" -le "$2" ]; }

log "upstream keepalive_requests=3"
start_backend || { fail "start backend"; finish; }
B1=$BACKEND_ADDR
P1=$(pick_port)
make_config "$WORK/kr.yaml" --port "$P1" --backend "$B1" --workers 1 --access-log "$WORK/kr.log" \
    --upstream keepalive_requests=3
start_ferry "$WORK/kr.yaml" "$P1" || finish
acc0=$(backend_stat "$B1" accepted)
seqs=""
for i in $(seq 1 10); do
    r=$("${CURL[@]}" -D - -o /dev/null "http://127.0.0.1:$P1/" | tr -d '\r' | sed -n 's/^X-Backend-Conn-Req: //Ip')
    seqs="$seqs ${r:-?}"
done
acc1=$(backend_stat "$B1" accepted)
log "request number on its backend connection, per request:$seqs"
assert_eq " 1 2 3 1 2 3 1 2 3 1" "$seqs" "each upstream connection carries at most 3 requests"
assert_eq 4 "$(( acc1 - acc0 - 1 ))" "10 requests used 4 upstream connections"

log "client Connection: close does not close the upstream connection"
acc0=$(backend_stat "$B1" accepted)
for i in 1 2; do
    out=$("${CURL[@]}" -H 'Connection: close' -D - -o /dev/null "http://127.0.0.1:$P1/status/200")
    assert_match "$out" '^[Cc]onnection: close' "response to a client Connection: close says close"
done
acc1=$(backend_stat "$B1" accepted)
assert_le "$(( acc1 - acc0 - 1 ))" 1 "two client connections that asked for close shared the upstream pool (new upstream connections)"

log "upstream keepalive_time=1s (connection lifetime)"
start_backend || { fail "start backend"; finish; }
B5=$BACKEND_ADDR
P5=$(pick_port)
make_config "$WORK/life.yaml" --port "$P5" --backend "$B5" --workers 1 --upstream keepalive_time=1s
start_ferry "$WORK/life.yaml" "$P5" || finish
conns=""
for i in $(seq 1 8); do
    c=$("${CURL[@]}" -D - -o /dev/null "http://127.0.0.1:$P5/" | tr -d '\r' | sed -n 's/^X-Backend-Conn: //Ip')
    conns="$conns $c"
    sleep 0.3   # the scenario: requests spread over ~2.4 s
done
log "backend connection per request:$conns"
n=$(tr ' ' '\n' <<<"$conns" | sed '/^$/d' | sort -u | wc -l)
assert_ge "$n" 2 "requests spread over 2.4 s used more than one upstream connection"
assert_le "$n" 4 "but connections were reused within their 1 s lifetime"

log "upstream keepalive_timeout=1s"
start_backend || { fail "start backend"; finish; }
B2=$BACKEND_ADDR
P2=$(pick_port)
make_config "$WORK/kt.yaml" --port "$P2" --backend "$B2" --workers 1 --upstream keepalive_timeout=1s
start_ferry "$WORK/kt.yaml" "$P2" || finish
assert_eq 200 "$(http_status "http://127.0.0.1:$P2/")" "request"
t0=$(now_ms)
assert_ge "$(active "$B2")" 2 "the upstream connection is kept idle after the response"
if wait_for 5 _active_le "$B2" 1; then
    assert_between "$(( $(now_ms) - t0 ))" 700 3000 "ferry closed the idle upstream connection after keepalive_timeout (ms)"
else
    fail "idle upstream connection still open 5 s after a 1 s keepalive_timeout"
fi

log "backend Keep-Alive: timeout=1 hint (upstream keepalive_timeout=60s)"
start_backend -ka-hint timeout=1 || { fail "start backend"; finish; }
B3=$BACKEND_ADDR
P3=$(pick_port)
make_config "$WORK/hint.yaml" --port "$P3" --backend "$B3" --workers 1 --upstream keepalive_timeout=60s
start_ferry "$WORK/hint.yaml" "$P3" || finish
assert_eq 200 "$(http_status "http://127.0.0.1:$P3/")" "request"
t0=$(now_ms)
if wait_for 5 _active_le "$B3" 1; then
    assert_le "$(( $(now_ms) - t0 ))" 1200 "ferry closed the idle connection before the backend's 1 s hint (ms)"
else
    fail "idle upstream connection still open 5 s after a Keep-Alive: timeout=1 hint"
fi

log "idle cap: keepalive=2, keepalive_strict, after a burst of 10 concurrent requests"
start_backend || { fail "start backend"; finish; }
B4=$BACKEND_ADDR
P4=$(pick_port)
make_config "$WORK/cap.yaml" --port "$P4" --backend "$B4" --workers 1 --upstream keepalive=2 \
    --upstream keepalive_strict=true
start_ferry "$WORK/cap.yaml" "$P4" || finish
pids=()
for i in $(seq 1 10); do
    "${CURL[@]}" -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$P4/sleep?ms=500" >>"$WORK/burst.status" 2>&1 &
    pids+=($!)
done
peak=0
_burst_seen() { local a; a=$(active "$B4"); [ "$a" -gt "$peak" ] && peak=$a; [ "$a" -ge 11 ]; }
wait_for 5 _burst_seen || log "peak active during burst: $peak"
for p in "${pids[@]}"; do wait "$p"; done
assert_eq 10 "$(grep -c '^200$' "$WORK/burst.status")" "10 concurrent requests succeeded"
assert_ge "$peak" 11 "the burst used 10 upstream connections at once (+1 /stats)"
if wait_for 3 _active_le "$B4" 3; then pass "after the burst at most 2 idle upstream connections remain"
else fail "after the burst $(( $(active "$B4") - 1 )) upstream connections remain (keepalive=2)"; fi
assert_eq 200 "$(http_status "http://127.0.0.1:$P4/")" "pool still works"
stop_pid "$FERRY_PID"

log "idle cap by default: keepalive=2, the burst's 10 connections stay for the next burst"
make_config "$WORK/peak.yaml" --port "$P4" --backend "$B4" --workers 1 --upstream keepalive=2
start_ferry "$WORK/peak.yaml" "$P4" || finish
acc0=$(backend_stat "$B4" accepted)
for round in 1 2 3; do
    pids=()
    : >"$WORK/peak.status"
    for i in $(seq 1 10); do
        "${CURL[@]}" -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$P4/sleep?ms=300" >>"$WORK/peak.status" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    assert_eq 10 "$(grep -c '^200$' "$WORK/peak.status")" "burst $round: 10 concurrent requests succeeded"
done
acc=$(( $(backend_stat "$B4" accepted) - acc0 - 1 ))   # minus the last /stats connection
assert_le "$acc" 10 "three bursts of 10 used at most 10 upstream connections (kept idle between bursts)"
assert_eq 200 "$(http_status "http://127.0.0.1:$P4/")" "pool still works"
finish
