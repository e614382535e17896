#!/bin/bash
# gRPC through ferry to HTTP/2 upstreams, with real grpc-go peers (go/src/ferrytest/grpcpeer):
#  1-2. the transcript of every RPC kind (unary, server/client streaming, bidi ping-pong and
#       concurrent, errors with non-ASCII/'%' messages and details, -bin metadata, multi-valued
#       and empty metadata, gzip, deadlines, unimplemented, health) is the same through ferry as
#       direct, for every combination of h2c/TLS towards ferry and h2c/h2 (TLS) towards the
#       backend; ferry-made and backend-made trailers-only answers keep their shape;
#    3. a backend with MaxConcurrentStreams 4 and 16 streams held open: exactly 4 upstream
#       connections (workers: 1), every RPC succeeds, all 16 run at once;
#    4. errors made by ferry are gRPC errors (HTTP 200, trailers-only, grpc-status 14 for an
#       unreachable upstream, 4 for a route timeout or read_timeout), not HTTP 502/504;
#    5. a client cancellation reaches the backend (RST_STREAM), and the upstream connection is
#       still the one reused afterwards;
#    6. 2000 unary RPCs from 20 concurrent callers: one upstream connection (workers: 1,
#       keepalive_requests: 0);
#    7. h2_read_idle_timeout/h2_ping_timeout 1s and a 5.5 s idle stretch: grpc-go's default
#       keepalive policy never answers GOAWAY too_many_pings, the connection stays;
#    8. a backend stopping gracefully (GOAWAY) lets the in-flight RPC finish; the next RPC goes
#       to the restarted backend.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs
G=$BIN/grpcpeer
TLSC=(-tls-ca "$C/ca.crt" -server-name localhost)          # client -> TLS ferry/backend
UPTLS="tls={server_name: localhost, ca_file: $C/ca.crt}"      # ferry -> TLS backend
LTLS=(--tls-cert "$C/localhost.crt:$C/localhost.key")         # ferry's TLS listener

gstat() { backend_stat "$1" "$2"; }   # gstat STATS-ADDR FIELD
_stat_ge() { local v; v=$(gstat "$1" "$2" 2>/dev/null); [ -n "$v" ] && [ "$v" -ge "$3" ]; }

# client ARGS... — grpcpeer client, bounded; stdout in OUT, stderr in $WORK/client.err
client() { OUT=$(timeout 60 "$G" client -deadline 40s "$@" 2>"$WORK/client.err"); }

# transcript NAME TARGET [client args] — writes $WORK/tr.NAME.txt
transcript() {
    local name=$1 target=$2; shift 2
    timeout 60 "$G" client -target "$target" -mode transcript -deadline 40s "$@" \
        >"$WORK/tr.$name.txt" 2>"$WORK/tr.$name.err"
    TR_RC=$?
}

# via_ferry NAME WHAT TARGET [client args] — runs the transcript through ferry REPEAT times
# (each a new client connection); every run must equal the direct transcript. The first
# differing run is shown as a diff.
REPEAT=3
via_ferry() {
    local name=$1 what=$2 target=$3 i d same=0 conns_ok=0 shown=0; shift 3
    for i in $(seq 1 $REPEAT); do
        transcript "$name.$i" "$target" "$@"
        [ "$TR_RC" = 0 ] && [ "$(grep -E '^conns=' "$WORK/tr.$name.$i.err")" = conns=1 ] && conns_ok=$((conns_ok + 1))
        d=$(diff -u "$WORK/tr.direct.txt" "$WORK/tr.$name.$i.txt")
        if [ -z "$d" ]; then
            same=$((same + 1))
        elif [ $shown = 0 ]; then
            shown=1
            printf '    first difference (run %d; diff -u direct via-ferry):\n' "$i"
            printf '%s\n' "$d" | head -n 60 | cut -c 1-200 | sed 's/^/        | /'
            grep -vE '^conns=' "$WORK/tr.$name.$i.err" | head -n 5 | sed 's/^/        | stderr: /'
        fi
    done
    assert_eq $REPEAT "$conns_ok" "$what: client runs that exited 0 over one connection"
    assert_eq $REPEAT "$same" "$what: runs whose transcript equals the direct one ($(grep -c '^== ' "$WORK/tr.direct.txt") RPCs)"
}

# gferry NAME PORT BACKEND [mkconfig args] — a workers: 1 ferry; sets F_PID, F_LOG
gferry() {
    local name=$1 port=$2 be=$3; shift 3
    make_config "$WORK/$name.yaml" --port "$port" --backend "$be" --workers 1 "$@" || return 1
    start_ferry "$WORK/$name.yaml" "$port" || return 1
    F_PID=$FERRY_PID F_LOG=$FERRY_LOG
}

# ------------------------------------------------------------------ 1, 2: transcripts
log "direct transcripts (h2c and TLS backends)"
start_grpcpeer -id g1 || { fail "start h2c grpc server"; finish; }
GP=$GRPC_ADDR GP_STATS=$GRPC_STATS_ADDR
start_grpcpeer -id g1 -tls "$C/localhost.crt:$C/localhost.key" || { fail "start TLS grpc server"; finish; }
GT=$GRPC_ADDR GT_STATS=$GRPC_STATS_ADDR
transcript direct "$GP"
assert_eq 0 "$TR_RC" "direct h2c transcript: client exit status"
assert_match "$(cat "$WORK/tr.direct.txt")" '^== unary-after' "direct transcript complete"
transcript direct2 "$GP"
assert_eq "" "$(diff "$WORK/tr.direct.txt" "$WORK/tr.direct2.txt")" "direct transcript is deterministic"
transcript direct-tls "$GT" "${TLSC[@]}"
assert_eq "" "$(diff "$WORK/tr.direct.txt" "$WORK/tr.direct-tls.txt")" "direct TLS transcript = direct h2c transcript"

P1=$(pick_port); gferry h2c-h2c "$P1" "$GP" --upstream protocol=h2c || finish
P2=$(pick_port); gferry tls-h2 "$P2" "$GT" "${LTLS[@]}" --upstream protocol=h2 --upstream "$UPTLS" || finish
P3=$(pick_port); gferry h2c-h2 "$P3" "$GT" --upstream protocol=h2 --upstream "$UPTLS" || finish
P4=$(pick_port); gferry tls-h2c "$P4" "$GP" "${LTLS[@]}" --upstream protocol=h2c || finish

log "1. h2c client -> ferry -> h2c backend"
via_ferry f-h2c-h2c "h2c->ferry->h2c" "127.0.0.1:$P1"
log "2. TLS client -> ferry -> TLS backend, and the mixed combinations"
via_ferry f-tls-h2 "TLS->ferry->h2(TLS)" "127.0.0.1:$P2" "${TLSC[@]}"
via_ferry f-h2c-h2 "h2c->ferry->h2(TLS)" "127.0.0.1:$P3"
via_ferry f-tls-h2c "TLS->ferry->h2c" "127.0.0.1:$P4" "${TLSC[@]}"
# Each ferry (workers: 1) carried its 3 client connections' RPCs over one upstream connection.
assert_eq 4 "$(gstat "$GP_STATS" accepted)" "h2c backend accepted 2 (direct runs) + 1 per ferry connections"
assert_eq 3 "$(gstat "$GT_STATS" accepted)" "TLS backend accepted 1 (direct run) + 1 per ferry connections"

# The HTTP-level shape of a backend's trailers-only error, direct and through ferry: the
# grpc-* fields stay in the one HEADERS frame (HTTP 200, no body, no trailers).
shape() { printf '%s\n' "$1" | grep -E '^(HTTP |BODY |[HT] (grpc-|content-type|x-))'; }
client -target "$GP" -mode raw -want-status 14
want=$(shape "$OUT")
assert_match "$want" '^H grpc-status: 14$' "direct raw: trailers-only grpc-status 14 in the headers"
client -target "127.0.0.1:$P1" -mode raw -want-status 14
assert_eq "$want" "$(shape "$OUT")" "h2c->ferry->h2c raw: trailers-only response relayed as is"
client -target "127.0.0.1:$P2" "${TLSC[@]}" -mode raw -want-status 14
assert_eq "$want" "$(shape "$OUT")" "TLS->ferry->h2 raw: trailers-only response relayed as is"
client -target "$GP" -mode raw
want=$(shape "$OUT")
client -target "127.0.0.1:$P1" -mode raw
assert_eq "$want" "$(shape "$OUT")" "h2c->ferry->h2c raw: OK response (headers, body, trailers) relayed as is"

# ------------------------------------------------------------------ 3: MaxConcurrentStreams 4
log "3. backend MaxConcurrentStreams 4, 16 streams held 1.5 s"
start_grpcpeer -id m -max-streams 4 || { fail "start grpc server -max-streams 4"; finish; }
GM=$GRPC_ADDR GM_STATS=$GRPC_STATS_ADDR
P5=$(pick_port); gferry maxstreams "$P5" "$GM" --upstream protocol=h2c || finish
client -target "127.0.0.1:$P5" -mode concurrent-streams -c 16 -hold-ms 1500
log "concurrent-streams: $(echo $OUT)"
assert_match "$OUT" '^ok=16 err=0 conns=1 ' "16 held RPCs all succeed over one client connection"
assert_eq 4 "$(gstat "$GM_STATS" accepted)" "backend accepted ceil(16/4) = 4 connections"
assert_eq 16 "$(gstat "$GM_STATS" max_active_rpcs)" "all 16 RPCs were running at the backend at once"
assert_eq 17 "$(gstat "$GM_STATS" rpcs)" "backend served 16 RPCs (+1 warm-up), none twice"

# ------------------------------------------------------------------ 4: errors made by ferry
log "4. errors ferry makes are gRPC errors"
DEAD=$(pick_port)
P6=$(pick_port); gferry dead "$P6" "127.0.0.1:$DEAD" --upstream protocol=h2c --upstream connect_timeout=2s || finish
client -target "127.0.0.1:$P6" -mode call
log "unreachable upstream: $(echo $OUT)"
assert_match "$OUT" '^code=14 name=Unavailable message="[^"]+"' "unreachable upstream: UNAVAILABLE with a grpc-message"
line1=$(printf '%s\n' "$OUT" | head -n 1)
assert_not_contains "$line1" "unexpected HTTP status" "unreachable upstream: not an HTTP error status"
assert_not_contains "$line1" "content-type" "unreachable upstream: a gRPC content-type"
client -target "127.0.0.1:$P6" -mode raw
assert_match "$OUT" '^HTTP 200$' "unreachable upstream raw: HTTP 200"
assert_match "$OUT" '^H content-type: application/grpc' "unreachable upstream raw: content-type application/grpc"
assert_match "$OUT" '^H grpc-status: 14$' "unreachable upstream raw: trailers-only grpc-status 14"
assert_match "$OUT" '^H grpc-message: .+' "unreachable upstream raw: grpc-message set"
assert_match "$OUT" '^BODY 0$' "unreachable upstream raw: no body"
assert_no_match "$OUT" '^T ' "unreachable upstream raw: nothing after the trailers-only HEADERS"

start_grpcpeer -id to || { fail "start grpc server for timeouts"; finish; }
GS=$GRPC_ADDR GS_STATS=$GRPC_STATS_ADDR
P7=$(pick_port); gferry rtimeout "$P7" "$GS" --upstream protocol=h2c --route timeout=1s || finish
P8=$(pick_port); gferry utimeout "$P8" "$GS" --upstream protocol=h2c --upstream read_timeout=1s || finish
for t in "route timeout=1s:$P7" "upstream read_timeout=1s:$P8"; do
    what=${t%:*} port=${t##*:}
    c0=$(gstat "$GS_STATS" cancelled)
    client -target "127.0.0.1:$port" -mode call -hold-ms 4000
    log "$what, server sleeps 4 s: $(echo $OUT)"
    assert_match "$OUT" '^code=4 name=DeadlineExceeded message="[^"]+"' "$what: DEADLINE_EXCEEDED with a grpc-message"
    el=$(printf '%s\n' "$OUT" | sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p' | head -n1)
    assert_between "${el:-0}" 800 3000 "$what: answered after about 1 s (ms)"
    client -target "127.0.0.1:$port" -mode raw -hold-ms 4000
    assert_match "$OUT" '^HTTP 200$' "$what raw: HTTP 200"
    assert_match "$OUT" '^H grpc-status: 4$' "$what raw: trailers-only grpc-status 4"
    assert_no_match "$OUT" '^T ' "$what raw: nothing after the trailers-only HEADERS"
    if wait_for 5 _stat_ge "$GS_STATS" cancelled $((c0 + 2)); then
        pass "$what: the backend saw both timed-out RPCs cancelled"
    else
        fail "$what: backend cancelled $(gstat "$GS_STATS" cancelled), expected >= $((c0 + 2))"
    fi
done

# ------------------------------------------------------------------ 5: cancellation
log "5. client cancellation reaches the backend"
start_grpcpeer -id c || { fail "start grpc server for cancellation"; finish; }
GC=$GRPC_ADDR GC_STATS=$GRPC_STATS_ADDR
P9=$(pick_port); gferry cancel "$P9" "$GC" --upstream protocol=h2c || finish
client -target "127.0.0.1:$P9" -mode call
assert_match "$OUT" '^code=0 ' "warm-up RPC"
assert_eq 1 "$(gstat "$GC_STATS" accepted)" "one upstream connection after the warm-up"
client -target "127.0.0.1:$P9" -mode cancel
log "cancel: $(echo $OUT)"
assert_match "$OUT" '^cancel server: got=1 code=1 Canceled' "server-streaming RPC cancelled after its first message"
assert_match "$OUT" '^cancel bidi: got=1 code=1 Canceled' "bidi RPC cancelled after its first message"
assert_match "$OUT" '^cancel unary: got=0 code=1 Canceled' "unary RPC cancelled while the server sleeps"
if wait_for 5 _stat_ge "$GC_STATS" cancelled 3; then
    pass "the backend saw the 3 RPCs cancelled"
else
    fail "backend cancelled=$(gstat "$GC_STATS" cancelled) rst_recv=$(gstat "$GC_STATS" rst_recv), expected 3 cancellations"
fi
client -target "127.0.0.1:$P9" -mode call
assert_match "$OUT" '^code=0 ' "RPC after the cancellations"
assert_eq 1 "$(gstat "$GC_STATS" accepted)" "the upstream connection was reused after the cancellations"
assert_eq 5 "$(gstat "$GC_STATS" rpcs)" "backend saw the 5 RPCs"

# ------------------------------------------------------------------ 6: reuse under load
log "6. 2000 unary RPCs, 20 concurrent"
start_grpcpeer -id r || { fail "start grpc server for load"; finish; }
GR=$GRPC_ADDR GR_STATS=$GRPC_STATS_ADDR
# keepalive_requests (default 1000) would end both connections after 1000 streams: lifted.
P10=$(pick_port); gferry load "$P10" "$GR" --upstream protocol=h2c --upstream keepalive_requests=0 \
    --listener keepalive_requests=0 || finish
client -target "127.0.0.1:$P10" -mode load -c 20 -n 2000
log "load: $(echo $OUT)"
assert_match "$OUT" '^ok=2000 err=0 conns=1$' "2000 RPCs ok over one client connection"
assert_eq 1 "$(gstat "$GR_STATS" accepted)" "backend accepted exactly 1 connection (workers: 1, multiplexed)"
assert_eq 2000 "$(gstat "$GR_STATS" rpcs)" "backend served exactly 2000 RPCs"

# ------------------------------------------------------------------ 7: pings vs keepalive policy
log "7. h2_read_idle_timeout 1s, h2_ping_timeout 1s, 5.5 s idle between RPCs"
start_grpcpeer -id k || { fail "start grpc server for pings"; finish; }
GK=$GRPC_ADDR GK_STATS=$GRPC_STATS_ADDR
A11=$(pick_port)
P11=$(pick_port); gferry pings "$P11" "$GK" --upstream protocol=h2c --upstream h2_read_idle_timeout=1s \
    --upstream h2_ping_timeout=1s --global "admin={listen: 127.0.0.1:$A11}" || finish
PING_LOG=$F_LOG
# Two RPCs 5.5 s apart on one client connection: ferry -> backend idles 5.5 s in between.
client -target "127.0.0.1:$P11" -mode load -c 1 -n 2 -gap-ms 5500
assert_match "$OUT" '^ok=2 err=0 conns=1$' "two RPCs 5.5 s apart succeed"
client -target "127.0.0.1:$P11" -mode call
assert_match "$OUT" '^code=0 ' "one more RPC after the idle stretch"
log "backend: pings_recv=$(gstat "$GK_STATS" pings_recv) goaway_sent=$(gstat "$GK_STATS" goaway_sent)"
assert_eq 0 "$(gstat "$GK_STATS" too_many_pings)" "backend never sent GOAWAY too_many_pings"
assert_eq 0 "$(gstat "$GK_STATS" goaway_sent)" "backend sent no GOAWAY at all"
assert_eq 1 "$(gstat "$GK_STATS" accepted)" "one upstream connection throughout"
assert_eq 3 "$(gstat "$GK_STATS" rpcs)" "backend served the 3 RPCs"
assert_eq "" "$(grep -i 'too_many_pings' "$PING_LOG")" "ferry's log does not mention too_many_pings"
closed=$(curl -sS --max-time 5 "http://127.0.0.1:$A11/metrics" 2>/dev/null | grep '^ferry_upstream_connections_closed_total' | grep -v ' 0$')
log "upstream closes: ${closed:-none}"
assert_not_contains "$closed" 'reason="goaway"' "no upstream connection closed by GOAWAY"
assert_not_contains "$closed" 'reason="ping_timeout"' "no upstream connection closed by ping_timeout"

# ------------------------------------------------------------------ 8: graceful backend stop
log "8. backend GracefulStop (GOAWAY) with an RPC in flight"
GPORT=$(pick_port)
start_grpcpeer --port "$GPORT" -id s1 -graceful-on-term || { fail "start grpc server s1"; finish; }
S1_PID=$GRPC_PID
P12=$(pick_port); gferry goaway "$P12" "127.0.0.1:$GPORT" --upstream protocol=h2c || finish
client -target "127.0.0.1:$P12" -mode call
assert_match "$OUT" '^code=0 ' "RPC before the stop"
timeout 30 "$G" client -target "127.0.0.1:$P12" -mode call -hold-ms 1500 >"$WORK/inflight.out" 2>&1 &
INFL=$!
S1_STATS=$GRPC_STATS_ADDR
if wait_for 5 _stat_ge "$S1_STATS" active_rpcs 1; then
    pass "the in-flight RPC reached the backend"
else
    fail "the in-flight RPC did not reach the backend within 5 s"
fi
assert_eq "2 1" "$(gstat "$S1_STATS" rpcs) $(gstat "$S1_STATS" active_rpcs)" "backend: 2 RPCs so far, 1 in flight, when it is told to stop"
kill -TERM "$S1_PID"
wait "$INFL"
assert_match "$(cat "$WORK/inflight.out")" '^code=0 ' "the in-flight RPC completed across the backend's GOAWAY"
stop_pid "$S1_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "backend exited 0 after GracefulStop"
start_grpcpeer --port "$GPORT" -id s2 || { fail "restart grpc server on $GPORT"; finish; }
client -target "127.0.0.1:$P12" -mode call
assert_match "$OUT" '^code=0 ' "next RPC served by the restarted backend"
assert_match "$OUT" 'trailer x-trailer-id = \["s2"\]' "... and it is the new one (id s2)"

finish
