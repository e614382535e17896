#!/bin/bash
# Upstream connection reuse under load: 10,000 requests from 50 concurrent keep-alive clients
# through ferry (workers: 2). With keepalive: 64 the backend accepts at most workers*50
# connections and >= 99% of requests go over reused connections (access log reused=1). With
# keepalive: 4 and keepalive_strict (nginx's cap) the pool cannot hold the concurrency and the
# backend sees more connections; with keepalive: 4 by default the idle set follows the peak
# demand, so 50 clients still need no more connections than with keepalive: 64.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

N=10000
C=50
WORKERS=2

run_load() { # KEEPALIVE [STRICT] -> sets ACCEPTED, REUSED, TOTAL_LOG
    local ka=$1 strict=${2:-false} tag=ka$1$2
    start_backend || { fail "start backend"; return 1; }
    local b=$BACKEND_ADDR bpid=$BACKEND_PID
    local p; p=$(pick_port)
    local alog="$WORK/access.$tag.log"
    make_config "$WORK/ferry.$tag.yaml" --port "$p" --backend "$b" --workers $WORKERS \
        --access-log "$alog" --upstream "keepalive=$ka" --upstream "keepalive_strict=$strict"
    start_ferry "$WORK/ferry.$tag.yaml" "$p" || return 1
    local fpid=$FERRY_PID
    local before; before=$(backend_stat "$b" accepted)
    out=$("$BIN/loadclient" -url "http://127.0.0.1:$p/" -c $C -n $N -deadline 120s 2>&1)
    log "keepalive=$ka loadclient: $(echo $out)"
    assert_match "$out" "ok=$N err=0" "keepalive=$ka: all $N requests succeeded"
    local after; after=$(backend_stat "$b" accepted)
    ACCEPTED=$(( after - before - 1 ))   # minus the connection of the second /stats call
    local breqs; breqs=$(backend_stat "$b" requests)
    assert_eq "$N" "$breqs" "keepalive=$ka: backend served exactly $N requests (no duplicates)"
    wait_lines "$alog" $N 15 || fail "keepalive=$ka: access log has $(wc -l <"$alog" 2>/dev/null) lines, expected $N"
    TOTAL_LOG=$(grep -c ' upstream=' "$alog")
    REUSED=$(grep -c ' reused=1 ' "$alog")
    log "keepalive=$ka: backend accepted $ACCEPTED connections; access log: $REUSED of $TOTAL_LOG reused=1"
    stop_pid "$fpid" TERM 10
    assert_eq 0 "$STOP_STATUS" "keepalive=$ka: ferry exits 0 on SIGTERM"
    stop_pid "$bpid"
}

run_load 64
acc64=$ACCEPTED
assert_le "$acc64" $(( WORKERS * C )) "keepalive=64: backend accepted connections <= workers*$C"
assert_ge "$acc64" 1 "keepalive=64: backend accepted at least one connection"
assert_eq "$N" "$TOTAL_LOG" "keepalive=64: one access log line per request"
if [ "${TOTAL_LOG:-0}" -gt 0 ]; then
    assert_ge $(( REUSED * 1000 / TOTAL_LOG )) 990 "keepalive=64: reused=1 per mille of requests"
else
    fail "keepalive=64: no access log lines"
fi

run_load 4 true
acc4=$ACCEPTED
log "accepted connections: keepalive=64 -> $acc64, keepalive=4 strict -> $acc4"
assert_gt "$acc4" "$acc64" "keepalive=4 strict churns more connections than keepalive=64"
assert_gt "$acc4" $(( WORKERS * C )) "keepalive=4 strict: more connections than clients (churn)"

run_load 4
acc4p=$ACCEPTED
echo "RESULT accepted keepalive=64: $acc64  keepalive=4 strict: $acc4  keepalive=4: $acc4p"
assert_le "$acc4p" $(( WORKERS * C )) "keepalive=4 (idle set follows peak demand): connections <= workers*$C"
if [ "${TOTAL_LOG:-0}" -gt 0 ]; then
    assert_ge $(( REUSED * 1000 / TOTAL_LOG )) 990 "keepalive=4: reused=1 per mille of requests"
fi
finish
