#!/bin/bash
# HTTP/2 upstream connections going away, against h2backend.py and the Go backend:
#  1. GOAWAY mid-load: the backend sends GOAWAY after 50 requests per connection with a
#     Last-Stream-ID BELOW streams already open, answers streams up to it and drops the rest.
#     500 unique requests, 20 at a time: all succeed, each is processed exactly once, the
#     backend saw several connections, ferry counts reason="goaway" closes.
#  2. REFUSED_STREAM: every 7th stream is refused unprocessed; 200 GETs and 100 POSTs (with a
#     body) all succeed, each processed once with its body, the refused ones were retried.
#  3. graceful restarts: two Go h2c backends on fixed ports, restarted 5 times in turn
#     (SIGTERM: GOAWAY, drain, exit; started again on the same port) under h2load: no request
#     fails at ferry; afterwards the upstream connection gauges settle.
#  4. PING: with h2_read_idle_timeout 1s / h2_ping_timeout 1s a SIGSTOPped backend's
#     connection is closed (reason ping_timeout) and the next request opens a new one; with
#     h2_read_idle_timeout 0 nothing is closed.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

# admin_metric ADMIN NAME{LABELS} — like ferry_metric, 0 when the sample is absent.
admin_metric() { local v; v=$(ferry_metric "$1" "$2"); echo "${v:-0}"; }
# metric_sum ADMIN PREFIX — the sum of every sample whose line starts with PREFIX.
metric_sum() {
    curl -sS --max-time 5 "http://$1/metrics" 2>/dev/null |
        awk -v k="$2" 'index($0, k) == 1 { s += $2 } END { print s + 0 }'
}
# req_lines LOG — "req" lines of an h2backend log; uniq_paths LOG — distinct paths among them.
req_lines() { grep -c '^req ' "$1"; }
uniq_paths() { awk '$1 == "req" { print $4, $5 }' "$1" | sort -u | wc -l; }
dup_paths() { awk '$1 == "req" { print $4, $5 }' "$1" | sort | uniq -d | head -n 5; }

# ---------------------------------------------------------------- 1. GOAWAY mid-load
log "1. GOAWAY with a Last-Stream-ID below open streams, mid-load"
start_h2backend --goaway-after 50 --last-stream-id-mode lower --delay-ms 5 || { fail "start h2backend"; finish; }
HB=$H2B_ADDR
HLOG=$H2B_LOG
P=$(pick_port)
A=127.0.0.1:$(pick_port)
ALOG=$WORK/access.goaway.log
make_config "$WORK/goaway.yaml" --port "$P" --backend "$HB" --workers 1 --access-log "$ALOG" \
    --global "admin={listen: \"$A\"}" --upstream protocol=h2c --upstream retries=2
start_ferry "$WORK/goaway.yaml" "$P" || finish
SRV="upstream=\"be\",server=\"$HB\""

out=$("$BIN/loadclient" -url "http://127.0.0.1:$P/r" -unique -c 20 -n 500 -deadline 60s 2>&1)
log "loadclient: $(echo $out)"
assert_match "$out" "ok=500 err=0" "500 requests (20 at a time) through GOAWAYs all succeeded"
assert_eq 500 "$(req_lines "$HLOG")" "backend processed 500 requests"
assert_eq 500 "$(uniq_paths "$HLOG")" "each request processed exactly once (500 distinct paths)"
assert_eq "" "$(dup_paths "$HLOG")" "no request processed twice"
conns=$(grep -c '^open ' "$HLOG")
goaways=$(grep -c '^goaway ' "$HLOG")
dropped=$(grep -c '^dropped ' "$HLOG")
log "backend: $conns connections, $goaways GOAWAYs, $dropped streams dropped above Last-Stream-ID"
assert_gt "$conns" 1 "backend saw more than one connection"
assert_gt "$dropped" 0 "the scenario happened: streams above Last-Stream-ID were open and dropped"
assert_eq 0 "$(grep -cE '" 5[0-9][0-9] ' "$ALOG")" "ferry access log: no 5xx"
_goaway_counted() { [ "$(admin_metric "$A" "ferry_upstream_connections_closed_total{$SRV,reason=\"goaway\"}")" -ge 1 ]; }
wait_for 10 _goaway_counted
g=$(admin_metric "$A" "ferry_upstream_connections_closed_total{$SRV,reason=\"goaway\"}")
assert_gt "$g" 0 "ferry metrics: upstream connections closed with reason=\"goaway\""
assert_le "$g" "$goaways" "goaway closes <= GOAWAYs the backend sent"
assert_eq "$conns" "$(admin_metric "$A" "ferry_upstream_connections_opened_total{$SRV}")" "ferry's opened count matches the backend's connections"
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "ferry exits 0"
stop_pid "$H2B_PID"

log "1b. GOAWAY with Last-Stream-ID = every stream received (processed mode), HTTP/2 clients"
start_h2backend --goaway-after 50 --last-stream-id-mode processed --delay-ms 5 || { fail "start h2backend"; finish; }
HB=$H2B_ADDR
HLOG=$H2B_LOG
P=$(pick_port)
make_config "$WORK/goaway2.yaml" --port "$P" --backend "$HB" --workers 1 \
    --access-log "$WORK/access.goaway2.log" --upstream protocol=h2c --upstream retries=2
start_ferry "$WORK/goaway2.yaml" "$P" || finish
out=$(timeout 60 h2load -n 500 -c 4 -m 5 "http://127.0.0.1:$P/p" 2>&1)
printf '%s\n' "$out" | grep -E '^(requests|status codes)' | sed 's/^/#   /'
assert_match "$out" 'requests: 500 total, 500 started, 500 done, 500 succeeded, 0 failed' "h2load: 500 requests through GOAWAYs succeeded"
assert_eq 500 "$(req_lines "$HLOG")" "backend processed 500 requests (none twice)"
assert_gt "$(grep -c '^goaway ' "$HLOG")" 1 "backend sent several GOAWAYs"
stop_pid "$FERRY_PID" TERM 10
stop_pid "$H2B_PID"

# ---------------------------------------------------------------- 2. REFUSED_STREAM
log "2. RST_STREAM(REFUSED_STREAM) on every 7th stream"
start_h2backend --refuse 7 || { fail "start h2backend"; finish; }
HB=$H2B_ADDR
HLOG=$H2B_LOG
P=$(pick_port)
A=127.0.0.1:$(pick_port)
ALOG=$WORK/access.refuse.log
make_config "$WORK/refuse.yaml" --port "$P" --backend "$HB" --workers 1 --access-log "$ALOG" \
    --global "admin={listen: \"$A\"}" --upstream protocol=h2c
start_ferry "$WORK/refuse.yaml" "$P" || finish
SRV="upstream=\"be\",server=\"$HB\""
"$BIN/loadclient" -url "http://127.0.0.1:$P/g" -unique -c 10 -n 200 -deadline 60s >"$WORK/lc.get.out" 2>&1 &
lg=$!
_track $lg
"$BIN/loadclient" -url "http://127.0.0.1:$P/p" -unique -method POST -c 10 -n 100 -deadline 60s >"$WORK/lc.post.out" 2>&1 &
lp=$!
_track $lp
wait_for 70 _exited "$lg"; wait_for 70 _exited "$lp"
og=$(cat "$WORK/lc.get.out"); op=$(cat "$WORK/lc.post.out")
log "GET: $(echo $og); POST: $(echo $op)"
assert_match "$og" "ok=200 err=0" "200 GETs succeeded"
assert_match "$op" "ok=100 err=0" "100 POSTs with a body succeeded"
refused=$(grep -c '^refused ' "$HLOG")
log "backend refused $refused streams"
assert_gt "$refused" 0 "the scenario happened: streams were refused"
assert_eq 300 "$(req_lines "$HLOG")" "backend processed 300 requests"
assert_eq 300 "$(uniq_paths "$HLOG")" "each request processed exactly once"
assert_eq 100 "$(grep -cE '^req [0-9]+ [0-9]+ POST /p\?i=[0-9]+ len=7 ' "$HLOG")" "every POST arrived with its 7-byte body (also the retried ones)"
assert_gt "$(grep -c '^refused [0-9]* [0-9]* POST ' "$HLOG")" 0 "POSTs were among the refused (retried with their body)"
wait_lines "$ALOG" 300 10
retries=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^retries=/) { sub(/^retries=/, "", $i); s += $i } } END { print s + 0 }' "$ALOG")
log "access log: retries sum $retries; $(grep -o 'retry_reason=[a-z_]*' "$ALOG" | sort | uniq -c | xargs)"
assert_eq "$refused" "$retries" "access log: one retry per refused stream"
assert_eq "$refused" "$(grep -c ' retry_reason=refused_stream ' "$ALOG")" "access log: retry_reason=refused_stream on each retried request"
assert_eq 0 "$(grep -cE '" 5[0-9][0-9] ' "$ALOG")" "ferry access log: no 5xx"
assert_eq "$refused" "$(admin_metric "$A" "ferry_upstream_retries_total{$SRV}")" "ferry metrics: retries counted"
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "ferry exits 0"
stop_pid "$H2B_PID"

# ---------------------------------------------------------------- 3. graceful restarts
log "3. backends restarted gracefully (GOAWAY + drain) under load"
B1P=$(pick_port)
B2P=$(pick_port)
while [ "$B2P" = "$B1P" ]; do B2P=$(pick_port); done
start_backend --port "$B1P" -h2c -graceful-on-term -id one || { fail "start backend 1"; finish; }
BPID[1]=$BACKEND_PID
start_backend --port "$B2P" -h2c -graceful-on-term -id two || { fail "start backend 2"; finish; }
BPID[2]=$BACKEND_PID
BPORT[1]=$B1P
BPORT[2]=$B2P
P=$(pick_port)
A=127.0.0.1:$(pick_port)
ALOG=$WORK/access.restart.log
make_config "$WORK/restart.yaml" --port "$P" --backend "127.0.0.1:$B1P" --backend "127.0.0.1:$B2P" \
    --workers 1 --access-log "$ALOG" --global "admin={listen: \"$A\"}" \
    --listener keepalive_requests=1000000 \
    --upstream protocol=h2c --upstream retries=2 --upstream connect_timeout=2s
start_ferry "$WORK/restart.yaml" "$P" || finish

timeout 60 h2load -c 4 -m 4 -n 10000000 -D 15 "http://127.0.0.1:$P/sleep?ms=10" >"$WORK/h2load.restart.out" 2>&1 &
load=$!
_track $load
_served_ge() { [ "$(backend_stat "127.0.0.1:$1" requests 2>/dev/null || echo 0)" -ge "$2" ]; }
wait_for 10 _served_ge "$B1P" 50 && wait_for 10 _served_ge "$B2P" 50 || fail "load did not reach both backends"
restarts=0
for i in 1 2 3 4 5; do
    k=$(( (i - 1) % 2 + 1 ))
    alive "$load" || { fail "h2load ended before restart $i"; break; }
    kill -TERM "${BPID[$k]}"
    wait_for 35 _exited "${BPID[$k]}" || fail "backend $k did not exit within 35s of SIGTERM"
    stop_pid "${BPID[$k]}" KILL 1
    assert_eq 0 "$STOP_STATUS" "restart $i: backend $k exits 0 after a graceful drain"
    start_backend --port "${BPORT[$k]}" -h2c -graceful-on-term -id "b$k" || { fail "restart $i: backend $k did not start again on port ${BPORT[$k]}"; break; }
    BPID[$k]=$BACKEND_PID
    wait_for 10 _served_ge "${BPORT[$k]}" 200 || fail "restart $i: restarted backend $k got < 200 requests in 10 s"
    restarts=$((restarts + 1))
done
log "$restarts restarts done; h2load still running: $(alive "$load" && echo yes || echo no)"
assert_eq 5 "$restarts" "5 graceful restarts under load"
wait_for 40 _exited "$load"
out=$(cat "$WORK/h2load.restart.out")
printf '%s\n' "$out" | grep -E '^(finished|requests|status codes)' | sed 's/^/#   /'
succeeded=$(sed -nE 's/^requests: .* ([0-9]+) succeeded.*/\1/p' <<<"$out")
assert_match "$out" ' 0 failed, 0 errored, 0 timeout' "h2load: no failed request"
assert_match "$out" 'status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx' "h2load: only 2xx"
wait_lines "$ALOG" "${succeeded:-1}" 10
# h2load -D stops with up to c x m = 16 requests in flight and drops them: those end as 499
# at ferry (the client went away); nothing else may fail.
assert_eq 0 "$(grep -cE '" 5[0-9][0-9] ' "$ALOG")" "ferry access log: no request failed (no 5xx)"
assert_le "$(grep -cE '" 499 ' "$ALOG")" 16 "ferry access log: 499 only for the <= 16 requests h2load dropped at its end"
assert_ge "$(grep -cE '" 200 ' "$ALOG")" "${succeeded:-1}" "ferry answered 200 to every request h2load counted"
closed_goaway=$(metric_sum "$A" 'ferry_upstream_connections_closed_total{upstream="be",server="127.0.0.1:'"$B1P"'",reason="goaway"}')
closed_goaway=$((closed_goaway + $(metric_sum "$A" 'ferry_upstream_connections_closed_total{upstream="be",server="127.0.0.1:'"$B2P"'",reason="goaway"}')))
log "ferry: $closed_goaway upstream connections closed after GOAWAY"
assert_ge "$closed_goaway" 5 "ferry metrics: a goaway close per restart"
_settled() {
    local act idle
    act=$(metric_sum "$A" 'ferry_upstream_connections_active{upstream="be"')
    idle=$(metric_sum "$A" 'ferry_upstream_connections_idle{upstream="be"')
    SETTLED="active=$act idle=$idle"
    [ "$act" -eq 0 ] && [ "$idle" -le 2 ]
}
wait_for 10 _settled
assert_eq 0 "$?" "after the load, upstream connections settle: none active, <= 2 idle (2 servers x 1 worker): $SETTLED"
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "ferry exits 0"
stop_pid "${BPID[1]}"; stop_pid "${BPID[2]}"

# ---------------------------------------------------------------- 4. PING
log "4. PING health of idle h2 connections"
start_backend -h2c || { fail "start backend"; finish; }
B=$BACKEND_ADDR
BP=$BACKEND_PID
P=$(pick_port)
A=127.0.0.1:$(pick_port)
make_config "$WORK/ping.yaml" --port "$P" --backend "$B" --workers 1 \
    --access-log "$WORK/access.ping.log" --global "admin={listen: \"$A\"}" \
    --upstream protocol=h2c --upstream h2_read_idle_timeout=1s --upstream h2_ping_timeout=1s
start_ferry "$WORK/ping.yaml" "$P" || finish
PING_LOG=$FERRY_LOG
P0=$(pick_port)
A0=127.0.0.1:$(pick_port)
make_config "$WORK/noping.yaml" --port "$P0" --backend "$B" --workers 1 \
    --access-log "$WORK/access.noping.log" --global "admin={listen: \"$A0\"}" \
    --upstream protocol=h2c --upstream h2_read_idle_timeout=0 --upstream h2_ping_timeout=1s
start_ferry "$WORK/noping.yaml" "$P0" || finish
SRV="upstream=\"be\",server=\"$B\""
PT="ferry_upstream_connections_closed_total{$SRV,reason=\"ping_timeout\"}"

acc0=$(backend_stat "$B" accepted)
assert_eq hello "$("${CURL[@]}" "http://127.0.0.1:$P/")" "PING on: first request"
assert_eq hello "$("${CURL[@]}" "http://127.0.0.1:$P0/")" "PING off: first request"
# A healthy idle connection answers its PING (sent after 1 s of silence): no ping_timeout in 3 s.
_pt_ge1() { [ "$(admin_metric "$1" "$PT")" -ge 1 ]; }
if wait_for 3 _pt_ge1 "$A"; then fail "a healthy backend's connection was closed by ping_timeout"
else pass "a healthy idle connection answers PINGs and stays (no ping_timeout in 3 s)"; fi
# ferry PINGs a silent connection once, and again only after the peer has sent HEADERS/DATA
# (no PING strikes against gRPC servers' keepalive policy): a response re-arms it, so the
# backend is stopped right after one (well within the 1 s read idle timeout).
assert_eq hello "$("${CURL[@]}" "http://127.0.0.1:$P0/")" "PING off: request before the stop"
t1=$(now_ms)
assert_eq hello "$("${CURL[@]}" "http://127.0.0.1:$P/")" "PING on: request before the stop"
kill -STOP "$BP"
gap=$(( $(now_ms) - t1 ))
[ "$gap" -lt 900 ] || log "warning: the stop came ${gap} ms after the request (PING may have gone before it)"
t0=$(now_ms)
wait_for 10 _pt_ge1 "$A"
dt=$(( $(now_ms) - t0 ))
assert_eq 1 "$(admin_metric "$A" "$PT")" "PING on: the stopped backend's connection closed with reason ping_timeout"
log "ping_timeout close ${dt} ms after SIGSTOP"
# The PING-off ferry has watched the same stopped backend for as long (> read idle + ping timeout).
if wait_for 1 _pt_ge1 "$A0"; then fail "PING off (h2_read_idle_timeout 0): connection closed by ping_timeout"
else pass "PING off (h2_read_idle_timeout 0): no ping_timeout close while the backend was stopped ${dt}+ ms"; fi
grep -iE 'ping' "$PING_LOG" | tail -n 2 | sed 's/^/#   /'
kill -CONT "$BP"
assert_eq hello "$("${CURL[@]}" "http://127.0.0.1:$P/")" "PING on: the next request succeeds"
assert_eq hello "$("${CURL[@]}" "http://127.0.0.1:$P0/")" "PING off: the next request succeeds"
assert_eq 2 "$(admin_metric "$A" "ferry_upstream_connections_opened_total{$SRV}")" "PING on: a new upstream connection was opened"
assert_eq 1 "$(admin_metric "$A0" "ferry_upstream_connections_opened_total{$SRV}")" "PING off: the same upstream connection was reused"
assert_eq 3 "$(( $(backend_stat "$B" accepted) - acc0 - 1 ))" "backend accepted 3 connections (2 from the PING-on ferry, 1 from the other)"
assert_eq 0 "$(admin_metric "$A0" "$PT")" "PING off: ping_timeout count stays 0"
finish
