#!/bin/bash
# Misbehaving clients (slowclients.py) against one ferry: slowloris request heads, trickled
# request bodies, slow readers of large responses, disconnects mid-upload and mid-download,
# 3000 idle TCP connections, 200 idle h2c connections. During each, a normal client still gets
# 200; after each, ferry is alive and "back to baseline": its descriptor count equals the
# warm-up baseline (plus any change in idle pooled upstream connections, read from /metrics),
# each backend's open connections are just ferry's idle pool again, RSS stays within
# baseline + 20 MB, and the error log has nothing worse than info/warn. Last, the HTTP/2
# counterparts of slowloris, slow body and slow reader: streams stalled by an unfinished
# header block, an unfinished body, or a flow-control window never replenished.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
SLOW="$PY $IT_DIR/slowclients.py"

RSS_SLACK_KB=$((20 * 1024))   # allowed RSS above the baseline after a scenario / while stalled
IDLE_CONN_MAX_B=16384         # allowed RSS per idle client connection (bytes)
ASAN=0
if ferry_is_asan; then
    ASAN=1
    log "ferry is built with AddressSanitizer: RSS bounds are reported, not asserted"
fi
rss_check() { # GROWTH_KB LIMIT_KB MESSAGE
    if [ "$ASAN" = 1 ]; then log "$3: $1 kB (limit $2 kB, not asserted under ASan)"
    else assert_le "$1" "$2" "$3 (kB)"; fi
}

# ---------------------------------------------------------------- peers and ferry

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
SINK_PORT=$(pick_port)
$SLOW sink --listen "127.0.0.1:$SINK_PORT" >"$WORK/sink.out" 2>"$WORK/sink.err" &
_track $!
wait_for 10 _read_listen "$WORK/sink.out" || { fail "sink backend did not start: $(cat "$WORK/sink.err")"; finish; }
S=$(sed -n 's/^LISTEN //p' "$WORK/sink.out" | head -n1)

P=$(pick_port)
P2=$(pick_port); while [ "$P2" = "$P" ]; do P2=$(pick_port); done
A=$(pick_port); while [ "$A" = "$P" ] || [ "$A" = "$P2" ]; do A=$(pick_port); done
cat >"$WORK/ferry.yaml" <<YAML
workers: 2
error_log: stderr
log_level: info
admin:
  listen: 127.0.0.1:$A
listeners:
  - name: web
    listen: "127.0.0.1:$P"
    keepalive_timeout: 5s
    client_header_timeout: 2s
    client_body_timeout: 2s
    send_timeout: 3s
    client_max_body_size: 0
    routes:
      - path: /sink/
        upstream: sink
      - upstream: be
  - name: idle
    listen: "127.0.0.1:$P2"
    keepalive_timeout: 5s
    client_header_timeout: 4s
    routes: [{upstream: be}]
upstreams:
  be:
    servers: [{address: "$B"}]
    keepalive: 64
  sink:
    servers: [{address: "$S"}]
    keepalive: 64
YAML
# ulimit -n 8192 for ferry alone (3000 idle connections + the rest); the wrapper execs ferry.
REAL_FERRY=$FERRY
printf '#!/bin/sh\nulimit -n 8192 || exit 1\nexec "%s" "$@"\n' "$REAL_FERRY" >"$WORK/ferry-8192"
chmod +x "$WORK/ferry-8192"
FERRY=$WORK/ferry-8192
start_ferry "$WORK/ferry.yaml" "$P" || finish
FERRY=$REAL_FERRY
FP=$FERRY_PID
URL=http://127.0.0.1:$P
ADMIN=127.0.0.1:$A
assert_eq 8192 "$(awk '/^Max open files/ { print $4 }' "/proc/$FP/limits")" "ferry runs with ulimit -n 8192"

# ---------------------------------------------------------------- baseline helpers

idle_up() { ferry_metric_sum "$ADMIN" ferry_upstream_connections_idle; }
idle_of() { ferry_metric "$ADMIN" "ferry_upstream_connections_idle{upstream=\"$1\",server=\"$2\"}"; }
# backend_offset ADDR UPSTREAM — a backend's open connections minus ferry's idle pool for it
# (the /stats request's own connection is counted by the backend too: the offset is constant).
backend_offset() {
    local act idl
    act=$(backend_stat "$1" active 2>/dev/null) || return 1
    idl=$(idle_of "$2" "$1")
    [ -n "$act" ] && [ -n "$idl" ] || return 1
    echo $((act - idl))
}
_fds_back() {
    local f i
    f=$(ferry_fds "$FP") || return 1
    i=$(idle_up)
    [ -n "$f" ] && [ -n "$i" ] || return 1
    FDS_NOW=$f; IDLE_NOW=$i
    [ $((f - i)) -le $((BASE_FDS - BASE_IDLE)) ]
}
_ups_clean() {
    OFF_B=$(backend_offset "$B" be) && OFF_S=$(backend_offset "$S" sink) &&
        [ "$OFF_B" = "$BASE_OFF_B" ] && [ "$OFF_S" = "$BASE_OFF_S" ]
}
_is200() { [ "$(http_status "$1")" = 200 ]; }
_has_result() { grep -q '^RESULT ' "$WORK/$1.out" 2>/dev/null; }
_has_ready() { grep -q '^READY' "$WORK/$1.out" 2>/dev/null; }
rv() { alog_field "$RESULT" "$1"; }   # a key=value of the last RESULT line

# start_clients NAME MODE ARGS... — runs slowclients.py in the background, waits for READY.
start_clients() {
    local name=$1; shift
    $SLOW "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    CLIENT_PID=$!
    _track "$CLIENT_PID"
    if ! wait_for 20 _has_ready "$name"; then
        fail "$name: clients not READY within 20 s"; sed 's/^/        | /' "$WORK/$name.err" | tail -n 10
    fi
    log "$name: $(grep '^READY' "$WORK/$name.out")"
}
# wait_result NAME SECONDS — waits for the RESULT line; sets RESULT.
wait_result() {
    RESULT=
    if wait_for "$2" _has_result "$1"; then
        RESULT=$(grep '^RESULT ' "$WORK/$1.out" | tail -n1)
        log "$1: $RESULT"
    else
        fail "$1: no RESULT within $2 s"; sed 's/^/        | /' "$WORK/$1.err" | tail -n 10
    fi
    wait "$CLIENT_PID" 2>/dev/null
}

# close_reasons — nonzero ferry_upstream_connections_closed_total by reason, all servers.
close_reasons() {
    curl -sS --max-time 5 "http://$ADMIN/metrics" 2>/dev/null | awk '
        index($1, "ferry_upstream_connections_closed_total{") == 1 {
            match($1, /reason="[a-z_]+"/); r = substr($1, RSTART + 8, RLENGTH - 9); n[r] += $2 }
        END { for (r in n) if (n[r]) printf "%s=%d ", r, n[r] }'
}

LOG_MARK=0
mark_log() { LOG_MARK=$(wc -l <"$FERRY_LOG"); }
log_since_mark() { tail -n +"$((LOG_MARK + 1))" "$FERRY_LOG"; }

# during NAME — a normal client is served while the abuse goes on.
during() {
    assert_eq 200 "$(http_status "$URL/")" "$1: a normal HTTP/1.1 client gets 200 during the abuse"
}

# back_to_baseline NAME — the checks after every scenario.
back_to_baseline() {
    local name=$1 r lines
    if alive "$FP" && ! _exited "$FP"; then pass "$name: ferry is alive"
    else fail "$name: ferry died"; tail -n 20 "$FERRY_LOG" | sed 's/^/        | /'; finish; fi
    if wait_for 10 _fds_back; then
        pass "$name: fds back to baseline ($FDS_NOW with $IDLE_NOW idle upstream; baseline $BASE_FDS with $BASE_IDLE)"
    else
        fail "$name: fds not back within 10 s: $FDS_NOW with $IDLE_NOW idle upstream (baseline $BASE_FDS with $BASE_IDLE)"
        ss -tanpH 2>/dev/null | grep "pid=$FP," | awk '{ print $1 }' | sort | uniq -c | sed 's/^/        | ferry sockets: /'
    fi
    if wait_for 10 _ups_clean; then
        pass "$name: backends' open connections are ferry's idle pool again (offsets be=$OFF_B sink=$OFF_S)"
    else
        fail "$name: upstream connections leaked: backend-minus-idle offsets be=$OFF_B sink=$OFF_S (baseline $BASE_OFF_B/$BASE_OFF_S)"
    fi
    assert_eq 0 "$(ferry_metric_sum "$ADMIN" ferry_upstream_connections_active)" "$name: no upstream connection left active"
    r=$(ferry_rss_kb "$FP")
    log "$name: RSS $r kB (baseline $BASE_RSS kB)"
    rss_check "$(( r - BASE_RSS ))" "$RSS_SLACK_KB" "$name: RSS growth over the baseline"
    assert_eq 200 "$(http_status "$URL/")" "$name: a normal client gets 200 afterwards"
    log "$name: upstream connections closed so far, by reason: $(close_reasons)"
    lines=$(log_since_mark)
    log "$name: ferry log lines: $(printf '%s\n' "$lines" | grep -oE '\[(debug|info|warn|error)\]' | sort | uniq -c | xargs)"
    assert_no_match "$lines" '\[error\]|Sanitizer|runtime error' "$name: ferry logs nothing worse than info/warn"
}

# ---------------------------------------------------------------- warm-up and baseline

log "warm-up"
for i in 1 2 3 4 5; do http_status "$URL/" >/dev/null; done
http_status "$URL/big?bytes=1048576" >/dev/null
head -c 1048576 /dev/zero >"$WORK/1m.bin"
assert_eq 200 "$(http_status "$URL/sink/warm" --data-binary @"$WORK/1m.bin")" "warm-up upload to the sink"
assert_eq 200 "$(http_status "$URL/" --http2-prior-knowledge)" "warm-up h2c request"
assert_eq 200 "$(http_status "http://127.0.0.1:$P2/")" "warm-up on the idle listener"
_stable() { # two equal readings of fds and idle pool in a row
    local a b
    a=$(ferry_fds "$FP")-$(idle_up); b=$(ferry_fds "$FP")-$(idle_up)
    [ "$a" = "$b" ]
}
wait_for 10 _stable || fail "fd count did not settle after the warm-up"
BASE_FDS=$(ferry_fds "$FP")
BASE_IDLE=$(idle_up)
BASE_RSS=$(ferry_rss_kb "$FP")
BASE_OFF_B=$(backend_offset "$B" be)
BASE_OFF_S=$(backend_offset "$S" sink)
log "baseline: $BASE_FDS fds, $BASE_IDLE idle upstream connections, RSS $BASE_RSS kB, backend offsets be=$BASE_OFF_B sink=$BASE_OFF_S"
[ -n "$BASE_FDS" ] && [ -n "$BASE_IDLE" ] && [ -n "$BASE_OFF_B" ] && [ -n "$BASE_OFF_S" ] ||
    { fail "could not take the baseline"; finish; }

# ---------------------------------------------------------------- 1. slowloris

log "=== 1. slowloris: 200 connections, one header byte every 200 ms; client_header_timeout 2s"
mark_log
start_clients loris slowloris "127.0.0.1:$P" 200 --interval 0.2 --max 12
during loris
wait_result loris 20
assert_eq 200 "$(rv closed)" "loris: all 200 connections closed by ferry"
assert_eq 0 "$(rv open)" "loris: none left open"
assert_gt "$(rv got408)" 0 "loris: ferry answered 408 ($(rv got408) of 200; the rest: plain close)"
assert_between "$(rv after_min)" 1.8 6 "loris: earliest close after the first byte (s)"
assert_between "$(rv after_max)" 1.8 6 "loris: latest close after the first byte, timeout 2 s + margin (s)"
back_to_baseline loris

# ---------------------------------------------------------------- 2. slow request body

log "=== 2. slow body: 50 POSTs declaring 1 MB, 100 B every 500 ms for 3 s then nothing; client_body_timeout 2s"
mark_log
s_heads0=$(backend_stat "$S" heads); s_comp0=$(backend_stat "$S" complete); s_inc0=$(backend_stat "$S" incomplete)
start_clients body slowbody "127.0.0.1:$P" 50 --path /sink/slowbody --size 1048576 --first 1024 \
    --trickle 100 --interval 0.5 --trickle-for 3 --max 15
during body
wait_result body 25
assert_eq 50 "$(rv closed)" "body: all 50 connections closed by ferry"
assert_eq 0 "$(rv early)" "body: none closed while still trickling (the timeout is between reads)"
assert_eq 50 "$(rv got408)" "body: 408 for each (no response had started)"
assert_between "$(rv idle_min)" 1.8 6 "body: earliest close after the last byte sent (s)"
assert_between "$(rv idle_max)" 1.8 6 "body: latest close after the last byte sent, timeout 2 s + margin (s)"
_sink_settled() {
    SH=$(( $(backend_stat "$S" heads) - s_heads0 )); SC=$(( $(backend_stat "$S" complete) - s_comp0 ))
    SI=$(( $(backend_stat "$S" incomplete) - s_inc0 ))
    [ "$SI" = "$SH" ]
}
wait_for 10 _sink_settled || fail "body: sink still has unfinished requests: heads=$SH incomplete=$SI"
log "body: sink saw $SH request heads, $SC complete, $SI incomplete"
assert_eq 0 "$SC" "body: the backend received no complete request"
back_to_baseline body

# ---------------------------------------------------------------- 3. slow readers

log "=== 3. slow readers: 20 GET /big?bytes=50000000 reading nothing (odd: 1 KB/s); send_timeout 3s"
mark_log
rm -f "$WORK/read.go"
start_clients read slowread "127.0.0.1:$P" 20 --path '/big?bytes=50000000' --go-file "$WORK/read.go" \
    --rate-odd 1024 --max 40
during read
_read_started() { [ "$(ferry_metric_sum "$ADMIN" ferry_upstream_connections_active)" -ge 20 ] 2>/dev/null; }
wait_for 10 _read_started || fail "read: the 20 downloads did not all reach the backend"
PEAK=0
_closed_sampling() { # samples ferry's RSS until the slow readers' connections are gone
    local r; r=$(ferry_rss_kb "$FP"); [ -n "$r" ] && [ "$r" -gt "$PEAK" ] && PEAK=$r
    _fds_back
}
t0=$(now_ms)
if wait_for 20 _closed_sampling; then
    pass "read: ferry closed the stalled connections (fds back after $(( $(now_ms) - t0 )) ms; send_timeout 3 s)"
else
    fail "read: stalled connections still open 20 s later ($FDS_NOW fds, baseline $BASE_FDS)"
fi
log "read: peak RSS while stalled $PEAK kB (baseline $BASE_RSS kB)"
rss_check "$(( PEAK - BASE_RSS ))" "$RSS_SLACK_KB" "read: peak RSS growth with 20 stalled 50 MB downloads"
touch "$WORK/read.go"
wait_result read 40
assert_eq 0 "$(rv complete)" "read: no stalled client got the whole 50 MB"
assert_eq 20 "$(rv cut)" "read: all 20 responses cut short by ferry (EOF/RST)"
back_to_baseline read

# ---------------------------------------------------------------- 4. disconnect mid-upload

log "=== 4. disconnect mid-upload: 50 POSTs of 10 MB (CL / chunked), close after half (FIN / RST)"
mark_log
s_heads0=$(backend_stat "$S" heads); s_comp0=$(backend_stat "$S" complete); s_inc0=$(backend_stat "$S" incomplete)
start_clients up abortup "127.0.0.1:$P" 50 --path /sink/upload --size 10485760 --max 40
during up
wait_result up 45
assert_eq 50 "$(rv sent)" "up: every client sent half its body before closing"
wait_for 10 _sink_settled || fail "up: sink still has unfinished requests: heads=$SH incomplete=$SI"
log "up: sink saw $SH request heads, $SC complete, $SI incomplete"
assert_eq 0 "$SC" "up: the backend received no complete request"
assert_gt "$SH" 0 "up: the bodies were being streamed to the backend"
back_to_baseline up

# ---------------------------------------------------------------- 5. disconnect mid-download

log "=== 5. disconnect mid-download: 50 GET /big?bytes=20000000, close after half (FIN / RST)"
mark_log
start_clients down abortdown "127.0.0.1:$P" 50 --path '/big?bytes=20000000' --max 40
during down
wait_result down 45
assert_eq 50 "$(rv halfread)" "down: every client read half the response before closing"
back_to_baseline down

# ---------------------------------------------------------------- 6. 3000 idle connections

log "=== 6. 3000 idle TCP connections on the second listener (client_header_timeout 4s)"
mark_log
rss0=$(ferry_rss_kb "$FP"); fds0=$(ferry_fds "$FP")
start_clients idle idle "127.0.0.1:$P2" 3000 --max 20
CONNECTED=$(grep -oE 'connected=[0-9]+' "$WORK/idle.out" | cut -d= -f2)
assert_eq 200 "$(http_status "http://127.0.0.1:$P2/")" "idle: a normal client gets 200 on the same listener during the abuse"
during idle
FDS_PEAK=0; RSS_AT_PEAK=0
_sample_idle() { # the most connections ferry held at once, and its RSS then; until RESULT
    local f r
    f=$(ferry_fds "$FP"); r=$(ferry_rss_kb "$FP")
    if [ -n "$f" ] && [ -n "$r" ] && [ "$f" -gt "$FDS_PEAK" ]; then FDS_PEAK=$f; RSS_AT_PEAK=$r; fi
    _has_result idle
}
wait_for 25 _sample_idle
held=$(( FDS_PEAK - fds0 ))
log "idle: ferry held at most $held of the $CONNECTED connections at once: RSS $rss0 -> $RSS_AT_PEAK kB"
assert_ge "$held" 2700 "idle: ferry held (nearly) all connections at once"
if [ "$held" -gt 0 ]; then
    per=$(( (RSS_AT_PEAK - rss0) * 1024 / held ))
    log "idle: $per bytes of RSS per idle connection"
    if [ "$ASAN" = 1 ]; then log "idle: $per bytes per idle connection (limit $IDLE_CONN_MAX_B, not asserted under ASan)"
    else assert_le "$per" "$IDLE_CONN_MAX_B" "idle: RSS per idle connection (bytes)"; fi
fi
wait_result idle 25
assert_eq 3000 "$(rv connected)" "idle: 3000 connections established"
[ "$(rv lost)" = 0 ] || log "idle: the kernel lost $(rv lost) handshakes (accept queue overflow, SYN cookies): not counted against ferry"
assert_eq "$(( $(rv connected) - $(rv lost) ))" "$(rv closed)" "idle: every connection ferry had was closed by ferry"
assert_eq 0 "$(rv held)" "idle: none still held at the client's deadline"
assert_between "$(rv after_min)" 3.8 9 "idle: earliest close after connect: not before client_header_timeout 4 s (s)"
assert_between "$(rv after_max)" 3.8 9 "idle: latest close after connect: client_header_timeout 4 s + margin (s)"
log "idle: ferry sent $(rv data) bytes to the idle connections before closing them"
back_to_baseline idle

# ---------------------------------------------------------------- 7. idle h2c connections

log "=== 7. 200 h2c connections: preface + SETTINGS, then no stream (keepalive_timeout 5s)"
mark_log
start_clients h2idle h2idle "127.0.0.1:$P" 200 --max 20
during h2idle
assert_eq 200 "$(http_status "$URL/" --http2-prior-knowledge)" "h2idle: a normal h2c client gets 200 during the abuse"
wait_result h2idle 25
assert_eq 200 "$(rv settings)" "h2idle: every connection got the server's SETTINGS"
assert_eq 200 "$(rv goaway)" "h2idle: every connection got GOAWAY"
assert_eq 200 "$(rv closed)" "h2idle: every connection closed by ferry"
assert_between "$(rv goaway_min)" 4 9 "h2idle: earliest GOAWAY after READY, keepalive_timeout 5 s (s)"
assert_between "$(rv goaway_max)" 4 9 "h2idle: latest GOAWAY after READY (s)"
assert_between "$(rv close_max)" 4 11 "h2idle: latest close after READY (s)"
back_to_baseline h2idle

# ---------------------------------------------------------------- 8-10. stalled h2 streams
# The HTTP/2 counterparts of 1-3: each stream is an exchange like an HTTP/1.1 request, so the
# same listener timeouts must bound it (as nginx applies client_header_timeout,
# client_body_timeout and send_timeout to HTTP/2 streams).

log "=== 8. h2 slowloris: 50 h2c connections with a header block never finished (HEADERS without END_HEADERS)"
mark_log
start_clients h2hdr h2stall "127.0.0.1:$P" 50 --what headers --max 12
during h2hdr
wait_result h2hdr 20
assert_eq 50 "$(rv ended)" "h2hdr: every unfinished header block ended by ferry (client_header_timeout 2 s / keepalive_timeout 5 s)"
assert_between "$(rv end_max)" 1.8 8 "h2hdr: latest end after the partial HEADERS (s)"
back_to_baseline h2hdr

log "=== 9. h2 slow body: 10 h2c connections x 2 POSTs declaring 1 MB, 1000 B sent, then nothing; client_body_timeout 2s"
mark_log
s_heads0=$(backend_stat "$S" heads); s_comp0=$(backend_stat "$S" complete); s_inc0=$(backend_stat "$S" incomplete)
start_clients h2body h2stall "127.0.0.1:$P" 10 --what body --streams 2 --path /sink/h2body --size 1048576 --max 12
during h2body
log "h2body: upstream connections active during the stall: $(ferry_metric_sum "$ADMIN" ferry_upstream_connections_active)"
wait_result h2body 20
assert_eq 20 "$(rv ended)" "h2body: every stalled upload ended by ferry (RST_STREAM, 408 or close)"
assert_between "$(rv end_max)" 1.8 6 "h2body: latest end after the stream started, client_body_timeout 2 s + margin (s)"
wait_for 10 _sink_settled || fail "h2body: sink still has unfinished requests: heads=$SH incomplete=$SI"
log "h2body: sink saw $SH request heads, $SC complete, $SI incomplete"
assert_eq 0 "$SC" "h2body: the backend received no complete request"
back_to_baseline h2body

log "=== 10. h2 stalled reader: 10 h2c connections x 2 GET /big?bytes=50000000, no WINDOW_UPDATE ever; send_timeout 3s"
mark_log
start_clients h2win h2stall "127.0.0.1:$P" 10 --what window --streams 2 --path '/big?bytes=50000000' --max 12
during h2win
up_during=$(ferry_metric_sum "$ADMIN" ferry_upstream_connections_active)
log "h2win: upstream connections active during the stall: $up_during"
wait_result h2win 20
assert_eq 20 "$(rv ended)" "h2win: every flow-control-stalled download ended by ferry (RST_STREAM or close)"
assert_between "$(rv end_max)" 1.8 7 "h2win: latest end after the stream started, send_timeout 3 s + margin (s)"
back_to_baseline h2win

finish
