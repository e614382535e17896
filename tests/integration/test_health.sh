#!/bin/bash
# Upstream health: active checks (http, grpc), passive outlier ejection, balancing, min_idle.
#  0. `ferry -t` rejects inconsistent health settings with an error (never a crash).
#  1. Three backends, round_robin, http checks every 300 ms (timeout 200 ms, 2 to fall, 2 to
#     rise), retries 2, GETs under load: a killed backend is marked down (log, metric) within
#     interval x unhealthy_threshold + timeout (+ margin), restarted with a failing /healthz
#     it gets no request while down, and once /healthz passes it rejoins (metric 1, requests
#     reach it); the load sees no error at all (GETs retried on the others).
#  2. HTTP check verdicts: 503 -> down (and its idle connections closed, reason health), 200
#     -> up, a body without expect_body -> down; method/Host/User-Agent of the check.
#  3. gRPC checks (grpc.health.v1) against grpcpeer: NOT_SERVING -> down, SERVING -> up; a
#     gRPC call through ferry while the only server is down -> status 14 UNAVAILABLE; the
#     `service` checked is the one configured.
#  4. Checks run once per process: workers 4, interval 200 ms -> ~10 checks per server in 2 s
#     at the backend (not 40), exactly as many as ferry counts.
#  5. Balancing: least_request spares a slow server; weights 1:3 -> 25 %/75 % (round_robin,
#     random, least_request); balance: hash on header:X-User keeps every key of the servers
#     that stay when one of ten is removed by a reload.
#  6. Outlier detection: 3 consecutive 500s -> ejected for base_ejection_time (1 s), the others
#     serve meanwhile, then it is tried again; the second ejection lasts 2 x base.
#  7. min_idle 2 x workers 2: 4 connections opened before any request (plain and TLS); after
#     the server is down (idle connections closed) and up again, 4 again.
#  8. panic: true with every server failing its checks -> requests still routed (200);
#     panic: false -> 503; initial: unhealthy -> 503 until healthy_threshold checks passed.
#  9. Checks over TLS (h2 by ALPN, auto, http1), h2c and tcp; a check answered after its
#     timeout fails ("timed out").
# 10. Ten reloads while checks are in flight: ferry lives, no check fails, checks go on.
#
# ONLY="1 5" runs only those sections (debugging).
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
IDC="$PY $IT_DIR/idclient.py"

want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

# hferry NAME mkconfig-args... — a ferry with an admin listener; sets P, AP, F_PID, F_LOG.
hferry() {
    local name=$1; shift
    P=$(pick_port); AP=$(pick_port)
    while [ "$AP" = "$P" ]; do AP=$(pick_port); done
    make_config "$WORK/$name.yaml" --port "$P" --global "admin={listen: \"127.0.0.1:$AP\"}" "$@" || return 1
    start_ferry "$WORK/$name.yaml" "$P" || return 1
    F_PID=$FERRY_PID F_LOG=$FERRY_LOG
}

# Per-server metrics of upstream "be" on the current ferry's admin listener ($AP).
smetric() { ferry_metric "127.0.0.1:$AP" "$1{upstream=\"be\",server=\"$2\"$3}"; }
healthy() { smetric ferry_upstream_server_healthy "$1"; }
_healthy_is() { [ "$(healthy "$1")" = "$2" ]; }
# wait_healthy ADDR 0|1 SECONDS — sets WAITED_MS.
wait_healthy() {
    local t0; t0=$(now_ms)
    wait_for "$3" _healthy_is "$1" "$2"; local rc=$?
    WAITED_MS=$(( $(now_ms) - t0 ))
    return $rc
}
checks() { smetric ferry_upstream_health_checks_total "$1" ",result=\"$2\""; }
_checks_ge() { local v; v=$(checks "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "$3" ]; }
mtotal() { ferry_metric_sum "127.0.0.1:$AP" "$1"; }
closed_health() { ferry_metric_sum_label "ferry_upstream_connections_closed_total" 'reason="health"'; }
ferry_metric_sum_label() { # NAME LABEL-SUBSTRING
    curl -sS --max-time 5 "http://127.0.0.1:$AP/metrics" 2>/dev/null |
        awk -v k="$1" -v l="$2" 'index($1, k "{") == 1 && index($1, l) { s += $2; n++ } END { if (n) printf "%d\n", s }'
}
status_json() { "${CURL[@]}" "http://127.0.0.1:$AP/status"; }
# status_server ADDR EXPR — EXPR on /status's server entry s of ADDR
status_server() {
    json_get "$(status_json)" "[s for u in j['upstreams'] for s in u['servers'] if s['address']=='$1'][0]$2"
}
bstat() { backend_stat "$1" "$2" 2>/dev/null; }
tstat() { # ADDR FIELD — /stats of a TLS backend (make_certs in $WORK/certs)
    curl -sS --max-time 5 --cacert "$WORK/certs/ca.crt" "https://$1/stats" 2>/dev/null |
        $PY -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null
}
_bstat_ge() { local v; v=$(bstat "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "$3" ]; }
_bstat_eq() { [ "$(bstat "$1" "$2")" = "$3" ]; }

# log_ms FILE FIXED-STRING [NTH] — epoch ms of the NTH (default 1st) line of ferry's log
# containing the string (ferry stamps lines in local time, to the millisecond).
log_ms() {
    local ts; ts=$(grep -F -- "$2" "$1" | sed -n "${3:-1}p" | cut -d' ' -f1)
    [ -n "$ts" ] && date -d "$ts" +%s%3N
}

HC_FAST="type: http, path: /healthz, interval: 300ms, timeout: 200ms, unhealthy_threshold: 2, healthy_threshold: 2"

# ------------------------------------------------------------------ 0. configuration
if want 0; then
log "0. ferry -t on health settings"
# ftest NAME EXPECTED-RC MESSAGE-REGEX mkconfig-args...
ftest() {
    local name=$1 rc=$2 re=$3 out got; shift 3
    make_config "$WORK/t-$name.yaml" --port 1 --backend 127.0.0.1:2 "$@"
    out=$("$FERRY" -t -c "$WORK/t-$name.yaml" 2>&1); got=$?
    assert_eq "$rc" "$got" "ferry -t $name: exit status"
    [ -n "$re" ] && assert_match "$out" "$re" "ferry -t $name: message"
}
ftest ok 0 "" --upstream "health_check={$HC_FAST, expect_status: [\"200-299\", 404], expect_body: ok}" \
    --upstream "outlier_detection={consecutive_failures: 3, base_ejection_time: 1s}" \
    --upstream balance=hash --upstream "hash_key=header:X-User" --upstream min_idle=2
ftest grpc-http1 1 't-grpc-http1.yaml:[0-9]+:[0-9]+: .*grpc needs HTTP/2' --upstream "health_check={type: grpc}"
ftest timeout-gt-interval 1 't-timeout-gt-interval.yaml:[0-9]+:[0-9]+: .*timeout is longer than its interval' \
    --upstream "health_check={type: http, interval: 2s, timeout: 3s}"
# The default timeout (1s) above a short interval: the same error, not a crash.
ftest default-timeout-gt-interval 1 'timeout is longer than its interval' \
    --upstream "health_check={type: http, interval: 300ms}"
ftest hash-key 1 'hash_key' --upstream balance=hash --upstream hash_key=bogus
ftest min-idle 1 'min_idle 5 is larger than max_connections 2' --upstream min_idle=5 --upstream max_connections=2
fi

# ------------------------------------------------------------------ 1. kill under load
if want 1; then
log "1. three backends under load, one killed, restarted failing, then healthy"
start_backend -health-path /healthz -id b1 || finish; B1=$BACKEND_ADDR; B1PID=$BACKEND_PID
start_backend -health-path /healthz -id b2 || finish; B2=$BACKEND_ADDR; B2PID=$BACKEND_PID
start_backend -health-path /healthz -id b3 || finish; B3=$BACKEND_ADDR; B3PID=$BACKEND_PID; B3PORT=$BACKEND_PORT
hferry s1 --backend "$B1" --backend "$B2" --backend "$B3" --workers 2 --access-log "$WORK/s1.access" \
    --upstream retries=2 --upstream balance=round_robin --upstream "health_check={$HC_FAST}" || finish
for b in "$B1" "$B2" "$B3"; do
    wait_for 5 _checks_ge "$b" pass 2 || fail "no 2 passed checks of $b within 5 s"
    assert_eq 1 "$(healthy "$b")" "s1: $b healthy at start"
done
out=$("$BIN/loadclient" -url "http://127.0.0.1:$P/" -c 8 -n 1200 -deadline 30s 2>&1)
assert_match "$out" "ok=1200 err=0" "s1: warm-up load"
rm -f "$WORK/s1.stop"
"$BIN/loadclient" -url "http://127.0.0.1:$P/" -c 8 -n 100000000 -deadline 90s -stop-file "$WORK/s1.stop" \
    >"$WORK/s1.load" 2>&1 &
LPID=$!; _track $LPID
r3=$(bstat "$B3" requests)
wait_for 5 _bstat_ge "$B3" requests $((r3 + 200)) || fail "s1: load does not reach b3"
t_kill=$(now_ms)
stop_pid "$B3PID" KILL 5 2>/dev/null   # (no "Killed" job notice)
log "b3 killed"
wait_healthy "$B3" 0 10 || fail "s1: killed b3 not marked down within 10 s"
log "b3 seen down after ${WAITED_MS} ms"
assert_le "$WAITED_MS" 2500 "s1: ms from the kill until /metrics shows b3 down (polled every 50 ms)"
wait_grep "$F_LOG" "server $B3: unhealthy after 2 failed checks" 5 || fail "s1: no 'unhealthy after 2 failed checks' log line for b3"
t_down=$(log_ms "$F_LOG" "server $B3: unhealthy after")
# interval x unhealthy_threshold + timeout = 800 ms; margin 700 ms for a loaded 2-CPU machine.
assert_le "$(( ${t_down:-999999999999999} - t_kill ))" 1500 "s1: ms from the kill to the logged down transition (bound 300x2+200 + 700 margin)"
assert_eq 1 "$(smetric ferry_upstream_health_transitions_total "$B3")" "s1: one transition for b3"
assert_eq False "$(status_server "$B3" "['healthy']")" "s1: /status b3 healthy false"
# Restart it on the same port with /healthz failing: still down, so no request must reach it
# while ferry checks it again and again.
start_backend --port "$B3PORT" -health-path /healthz -health-fail -id b3 || fail "s1: restart b3"
r1=$(bstat "$B1" requests); r2=$(bstat "$B2" requests)
wait_for 10 _bstat_ge "$B3" health_requests 4 || fail "s1: restarted b3 not checked 4 times within 10 s"
assert_eq 0 "$(bstat "$B3" requests)" "s1: requests to the restarted b3 while it fails its checks"
assert_gt "$(( $(bstat "$B1" requests) + $(bstat "$B2" requests) - r1 - r2 ))" 300 "s1: meanwhile b1+b2 served the load"
assert_eq 0 "$(healthy "$B3")" "s1: b3 still down"
bchecks=$(bstat "$B3" health_requests)
curl -sS --max-time 5 "http://$B3/health/ok" >/dev/null
wait_healthy "$B3" 1 10 || fail "s1: b3 not healthy again within 10 s"
log "b3 seen up after ${WAITED_MS} ms"
assert_le "$WAITED_MS" 2500 "s1: ms to rejoin (2 passes at 300 ms; margin)"
assert_ge "$(( $(bstat "$B3" health_requests) - bchecks ))" 2 "s1: checks of b3 since its /healthz passes (healthy_threshold 2)"
assert_match "$(grep -F "server $B3: healthy again" "$F_LOG")" "healthy again \(2 checks passed\)" "s1: 'healthy again' logged"
wait_for 5 _bstat_ge "$B3" requests 100 || fail "s1: requests do not reach b3 again"
assert_ge "$(bstat "$B3" requests)" 100 "s1: requests reach b3 again"
assert_eq 2 "$(smetric ferry_upstream_health_transitions_total "$B3")" "s1: two transitions for b3"
: >"$WORK/s1.stop"
wait_for 30 _exited "$LPID" || fail "s1: load did not stop"
wait "$LPID"
out=$(cat "$WORK/s1.load")
log "s1 load: $(echo $out)"
assert_match "$out" "ok=[0-9]+ err=0 " "s1: no failed request under load (kill, down, restart, up)"
ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$WORK/s1.load")
assert_ge "${ok:-0}" 2000 "s1: requests made during the test"
assert_eq 0 "$(grep -cE '" [5][0-9][0-9] ' "$WORK/s1.access")" "s1: 5xx in the access log"
assert_ge "$(grep -c 'retries=[12] ' "$WORK/s1.access")" 1 "s1: requests retried on another server (access log)"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s1: ferry exits 0"
stop_pid "$BACKEND_PID"; stop_pid "$B1PID"; stop_pid "$B2PID"
fi

# ------------------------------------------------------------------ 2. http verdicts
if want 2; then
log "2. http check: status and body"
start_backend -health-path /healthz -id a || finish; A=$BACKEND_ADDR; APID=$BACKEND_PID
hferry s2 --backend "$A" --workers 2 --upstream "health_check={type: http, path: /healthz, method: GET, \
host: health.test, expect_status: [\"200\"], expect_body: ok, interval: 200ms, timeout: 150ms, \
unhealthy_threshold: 2, healthy_threshold: 2}" || finish
wait_for 5 _checks_ge "$A" pass 2 || fail "s2: no 2 passed checks within 5 s"
assert_eq "GET health.test ferry-health-check HTTP/1.1" "$(bstat "$A" health_last)" "s2: the check's method, Host, User-Agent, protocol"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s2: 200 while healthy"
curl -sS --max-time 5 "http://$A/health/fail" >/dev/null
wait_healthy "$A" 0 5 || fail "s2: /healthz 503 not marked down within 5 s"
assert_match "$(grep -F "server $A: unhealthy" "$F_LOG")" "unhealthy after 2 failed checks \(last: status 503\)" "s2: down log names the status"
assert_eq 503 "$(http_status "http://127.0.0.1:$P/")" "s2: only server down, panic false: 503"
assert_contains "$("${CURL[@]}" "http://127.0.0.1:$P/")" 'upstream be: no healthy server' "s2: the 503 says why"
_closed_health_ge() { local v; v=$(closed_health); [ -n "$v" ] && [ "$v" -ge "$1" ]; }
wait_for 5 _closed_health_ge 1 || true
assert_ge "$(closed_health)" 1 "s2: its idle pooled connection closed with reason health"
assert_eq 0 "$(mtotal ferry_upstream_connections_idle)" "s2: no idle connection to a down server"
curl -sS --max-time 5 "http://$A/health/ok" >/dev/null
wait_healthy "$A" 1 5 || fail "s2: 200 again not marked up within 5 s"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s2: 200 once up again"
curl -sS --max-time 5 "http://$A/health/set?status=200&body=degraded" >/dev/null
wait_healthy "$A" 0 5 || fail "s2: body without expect_body not marked down within 5 s"
assert_match "$(grep -F "server $A: unhealthy" "$F_LOG" | tail -n1)" "last: body does not contain expect_body" "s2: down log names the body"
curl -sS --max-time 5 "http://$A/health/set?status=200&body=all+ok+here" >/dev/null
wait_healthy "$A" 1 5 || fail "s2: body containing expect_body not marked up within 5 s"
curl -sS --max-time 5 "http://$A/health/set?status=204&body=ok" >/dev/null
wait_healthy "$A" 0 5 || fail "s2: 204 (expect_status [200]) not marked down within 5 s"
# A reload (same file) keeps the verdict and the counts: still down, no transition.
cf=$(checks "$A" fail)
_reloads_ge() { local v; v=$(ferry_metric "127.0.0.1:$AP" 'ferry_config_reloads_total{result="ok"}'); [ -n "$v" ] && [ "$v" -ge "$1" ]; }
kill -HUP "$F_PID"
wait_for 10 _reloads_ge 1 || fail "s2: reload not done within 10 s"
assert_eq 0 "$(healthy "$A")" "s2: still down right after a reload"
assert_eq 503 "$(http_status "http://127.0.0.1:$P/")" "s2: still 503 right after a reload"
assert_ge "$(checks "$A" fail)" "$cf" "s2: failed checks not reset by the reload"
assert_eq 5 "$(smetric ferry_upstream_health_transitions_total "$A")" "s2: no transition from the reload"
curl -sS --max-time 5 "http://$A/health/ok" >/dev/null
wait_healthy "$A" 1 5 || fail "s2: up again"
assert_eq 6 "$(smetric ferry_upstream_health_transitions_total "$A")" "s2: transitions (3 x down and up)"
assert_ge "$(checks "$A" fail)" 6 "s2: failed checks counted"
assert_eq 3 "$(grep -c "server $A: unhealthy after" "$F_LOG")" "s2: 'unhealthy after' logged once per down transition"
assert_eq 3 "$(grep -c "server $A: healthy again" "$F_LOG")" "s2: 'healthy again' logged once per up transition"
assert_eq True "$(status_server "$A" "['healthy']")" "s2: /status healthy"
assert_eq False "$(status_server "$A" "['ejected']")" "s2: /status ejected"
assert_ge "$(status_server "$A" "['checks_failed']")" 6 "s2: /status checks_failed"
assert_ge "$(status_server "$A" "['checks_passed']")" 8 "s2: /status checks_passed"
# (read one after the other: a check may end in between)
assert_between "$(( $(checks "$A" pass) + $(checks "$A" fail) - $(status_server "$A" "['checks_passed']") - \
    $(status_server "$A" "['checks_failed']") ))" -2 2 "s2: /metrics minus /status checks (pass+fail)"
# Down, then a reload that drops health_check: nothing keeps it out any more.
curl -sS --max-time 5 "http://$A/health/fail" >/dev/null
wait_healthy "$A" 0 5 || fail "s2: down before the reload dropping health_check"
make_config "$WORK/s2.yaml" --port "$P" --global "admin={listen: \"127.0.0.1:$AP\"}" --backend "$A" --workers 2
kill -HUP "$F_PID"
wait_for 10 _reloads_ge 2 || fail "s2: second reload not done within 10 s"
assert_eq 1 "$(healthy "$A")" "s2: after a reload without health_check: healthy"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s2: after a reload without health_check: 200"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s2: ferry exits 0"
stop_pid "$APID"
fi

# ------------------------------------------------------------------ 3. grpc
if want 3; then
log "3. grpc checks against grpcpeer"
start_grpcpeer -id g || { fail "start grpcpeer"; finish; }
G=$GRPC_ADDR; GS=$GRPC_STATS_ADDR
GHC="type: grpc, interval: 200ms, timeout: 150ms, unhealthy_threshold: 2, healthy_threshold: 2"
hferry s3svc --backend "$G" --workers 2 --upstream protocol=h2c \
    --upstream "health_check={$GHC, service: grpc.testing.TestService}" || finish
P_SVC=$P AP_SVC=$AP PID_SVC=$F_PID
hferry s3 --backend "$G" --workers 2 --upstream protocol=h2c --upstream "health_check={$GHC}" || finish
wait_for 5 _checks_ge "$G" pass 2 || fail "s3: no 2 passed grpc checks within 5 s"
gcall() { timeout 20 "$BIN/grpcpeer" client -target "127.0.0.1:$1" -mode call -deadline 10s 2>&1 | head -n1; }
assert_match "$(gcall "$P")" '^code=0 ' "s3: call through ferry while SERVING"
gset() { curl -sS --max-time 5 "http://$GS/health/set?status=$1${2:+&service=$2}" >/dev/null; }
gset NOT_SERVING
wait_healthy "$G" 0 5 || fail "s3: NOT_SERVING not marked down within 5 s"
assert_eq 0 "$(healthy "$G")" "s3: ferry_upstream_server_healthy 0"
assert_match "$(grep -F "server $G: unhealthy" "$F_LOG")" 'last: not SERVING' "s3: down log says not SERVING"
out=$(gcall "$P")
assert_match "$out" '^code=14 name=Unavailable message=.*no healthy server' "s3: call with the only server down: UNAVAILABLE (no healthy server)"
gset SERVING
wait_healthy "$G" 1 5 || fail "s3: SERVING not marked up within 5 s"
assert_match "$(gcall "$P")" '^code=0 ' "s3: call through ferry when SERVING again"
# Only the TestService entry NOT_SERVING: the ferry checking that service goes down, the
# one checking the server as a whole ("") does not.
gset NOT_SERVING grpc.testing.TestService
AP0=$AP; AP=$AP_SVC
wait_healthy "$G" 0 5 || fail "s3: service NOT_SERVING not marked down (service: grpc.testing.TestService)"
assert_match "$(gcall "$P_SVC")" '^code=14 ' "s3: service ferry answers UNAVAILABLE"
AP=$AP0
assert_eq 1 "$(healthy "$G")" "s3: the ferry checking service \"\" keeps it up"
assert_match "$(gcall "$P")" '^code=0 ' "s3: and routes to it"
gset SERVING grpc.testing.TestService
AP=$AP_SVC
wait_healthy "$G" 1 5 || fail "s3: service SERVING again not marked up"
AP=$AP0
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s3: ferry exits 0"
stop_pid "$PID_SVC" TERM 10; assert_eq 0 "$STOP_STATUS" "s3: service ferry exits 0"
stop_pid "$GRPC_PID"
# grpc check over TLS (protocol h2).
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
start_grpcpeer -id gt -tls "$WORK/certs/localhost.crt:$WORK/certs/localhost.key" || { fail "start TLS grpcpeer"; finish; }
GT=$GRPC_ADDR; GS=$GRPC_STATS_ADDR
hferry s3tls --backend "$GT" --workers 2 --upstream protocol=h2 \
    --upstream "tls={server_name: localhost, ca_file: $WORK/certs/ca.crt}" --upstream "health_check={$GHC}" || finish
wait_for 5 _checks_ge "$GT" pass 2 || fail "s3 tls: no 2 passed grpc checks over TLS within 5 s"
assert_eq 0 "$(checks "$GT" fail)" "s3 tls: no failed grpc check over TLS"
gset NOT_SERVING
wait_healthy "$GT" 0 5 || fail "s3 tls: NOT_SERVING not marked down"
gset SERVING
wait_healthy "$GT" 1 5 || fail "s3 tls: SERVING not marked up"
assert_match "$(gcall "$P")" '^code=0 ' "s3 tls: call through ferry"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s3 tls: ferry exits 0"
stop_pid "$GRPC_PID"
fi

# ------------------------------------------------------------------ 4. once per process
if want 4; then
log "4. checks once per process (workers 4)"
start_backend -health-path /healthz -id c1 || finish; C1=$BACKEND_ADDR; C1PID=$BACKEND_PID
start_backend -health-path /healthz -id c2 || finish; C2=$BACKEND_ADDR; C2PID=$BACKEND_PID
hferry s4 --backend "$C1" --backend "$C2" --workers 4 --upstream "health_check={type: http, \
path: /healthz, interval: 200ms, timeout: 150ms}" || finish
wait_for 5 _checks_ge "$C1" pass 2 || fail "s4: checks do not run"
wait_for 5 _checks_ge "$C2" pass 2 || fail "s4: checks do not run"
h1a=$(bstat "$C1" health_requests); h2a=$(bstat "$C2" health_requests); fa=$(checks "$C1" pass)
sleep 2   # the measurement window (not a synchronisation)
h1b=$(bstat "$C1" health_requests); h2b=$(bstat "$C2" health_requests); fb=$(checks "$C1" pass)
log "health requests in 2 s: c1 $((h1b - h1a)), c2 $((h2b - h2a)); ferry counted $((fb - fa)) for c1"
assert_between "$((h1b - h1a))" 6 16 "s4: c1 health requests in 2 s at 200 ms with 4 workers (~10, not 40)"
assert_between "$((h2b - h2a))" 6 16 "s4: c2 health requests in 2 s"
assert_between "$(( (fb - fa) - (h1b - h1a) ))" -2 2 "s4: the backend saw as many checks as ferry counted"
tot=$(bstat "$C1" health_requests); pc=$(checks "$C1" pass)
assert_between "$(( tot - pc ))" -2 2 "s4: c1 health requests since the start = ferry's passed checks"
assert_eq 0 "$(checks "$C1" fail)" "s4: no failed check"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s4: ferry exits 0"
stop_pid "$C1PID"; stop_pid "$C2PID"
fi

# ------------------------------------------------------------------ 5. balancing
if want 5; then
log "5a. least_request and a slow server"
start_backend -id fast || finish; F=$BACKEND_ADDR; FPID=$BACKEND_PID
start_backend -id slow -delay 50ms || finish; S=$BACKEND_ADDR; SPID=$BACKEND_PID
# share SERVER-A SERVER-B N PORT [loadclient args] — runs N requests; SHARE = A's % of them.
share() {
    local a=$1 b=$2 n=$3 port=$4; shift 4
    local a0 b0 out; a0=$(bstat "$a" requests); b0=$(bstat "$b" requests)
    out=$("$BIN/loadclient" -url "http://127.0.0.1:$port/" -n "$n" -deadline 60s "$@" 2>&1)
    assert_match "$out" "ok=$n err=0" "load of $n requests"
    local da=$(( $(bstat "$a" requests) - a0 )) db=$(( $(bstat "$b" requests) - b0 ))
    SHARE=$($PY -c "print('%.1f' % (100.0 * $da / max(1, $da + $db)))")
}
hferry s5lr --backend "$F" --backend "$S" --workers 2 --upstream balance=least_request || finish
share "$S" "$F" 2000 "$P" -c 16; lr=$SHARE
log "least_request: slow server got $lr %"
assert_between "$lr" 0 35 "s5: least_request: the slow server's share (%) (two random choices: >= ~25 %)"
stop_pid "$F_PID" TERM 10
hferry s5rr --backend "$F" --backend "$S" --workers 2 --upstream balance=round_robin || finish
share "$S" "$F" 800 "$P" -c 16; rr=$SHARE
log "round_robin: slow server got $rr %"
assert_between "$rr" 45 55 "s5: round_robin: the slow server's share (%), for comparison"
stop_pid "$F_PID" TERM 10
stop_pid "$FPID"; stop_pid "$SPID"

log "5b. weights 1 and 3"
start_backend -id w1 || finish; W1=$BACKEND_ADDR; W1PID=$BACKEND_PID
start_backend -id w3 || finish; W3=$BACKEND_ADDR; W3PID=$BACKEND_PID
for bal in round_robin random least_request; do
    hferry "s5w-$bal" --backend "$W1,weight=1" --backend "$W3,weight=3" --workers 2 --upstream "balance=$bal" || finish
    share "$W1" "$W3" 2000 "$P" -c 8; w=$SHARE
    log "$bal: weight-1 server got $w %"
    assert_between "$w" 20 30 "s5: $bal, weights 1:3: the weight-1 server's share (%)"
    stop_pid "$F_PID" TERM 10
done
stop_pid "$W1PID"; stop_pid "$W3PID"

log "5c. consistent hash: one of ten servers removed by a reload"
HB=(); HPIDS=()
for i in $(seq 0 9); do
    start_backend -id "h$i" || finish
    HB+=("$BACKEND_ADDR"); HPIDS+=("$BACKEND_PID")
done
hargs=(); for b in "${HB[@]}"; do hargs+=(--backend "$b"); done
hferry s5h "${hargs[@]}" --workers 2 --upstream balance=hash --upstream "hash_key=header:X-User" || finish
keymap() { $IDC --url "http://127.0.0.1:$P/" -n 1000 --per-conn 50 --header 'X-User: user-{i}' | awk '{print $1, $2, $3}'; }
keymap >"$WORK/hash.before"
keymap >"$WORK/hash.before2"
assert_eq 1000 "$(grep -c ' 200 h[0-9]$' "$WORK/hash.before")" "s5: 1000 keyed requests answered"
assert_eq "" "$(diff "$WORK/hash.before" "$WORK/hash.before2")" "s5: the same key goes to the same server (two runs, two workers)"
counts=$(awk '{print $3}' "$WORK/hash.before" | sort | uniq -c | sort -n)
log "keys per server: $(echo $counts)"
assert_eq 10 "$(printf '%s\n' "$counts" | wc -l)" "s5: all ten servers hold keys"
assert_ge "$(printf '%s\n' "$counts" | head -n1 | awk '{print $1}')" 20 "s5: the fewest keys on one server"
# Remove the server holding the fewest keys (<= 10 % of them, by pigeonhole).
gone=$(printf '%s\n' "$counts" | head -n1 | awk '{print $2}')
gone_addr=${HB[${gone#h}]}
hargs=(); for b in "${HB[@]}"; do [ "$b" = "$gone_addr" ] || hargs+=(--backend "$b"); done
make_config "$WORK/s5h.yaml" --port "$P" --global "admin={listen: \"127.0.0.1:$AP\"}" "${hargs[@]}" \
    --workers 2 --upstream balance=hash --upstream "hash_key=header:X-User"
_reloads_ge() { local v; v=$(ferry_metric "127.0.0.1:$AP" 'ferry_config_reloads_total{result="ok"}'); [ -n "$v" ] && [ "$v" -ge "$1" ]; }
kill -HUP "$F_PID"
wait_for 10 _reloads_ge 1 || fail "s5: reload not done within 10 s"
keymap >"$WORK/hash.after"
assert_eq 1000 "$(grep -c ' 200 h[0-9]$' "$WORK/hash.after")" "s5: 1000 keyed requests answered after the reload"
assert_eq 0 "$(grep -c " $gone\$" "$WORK/hash.after")" "s5: no key on the removed server $gone"
read -r kept moved_other from_gone spread < <(awk -v g="$gone" '
    NR == FNR { was[$1] = $3; next }
    { if (was[$1] == $3) k++; else if (was[$1] != g) m++; else { f++; to[$3] = 1 } }
    END { n = 0; for (x in to) n++; print k+0, m+0, f+0, n }' "$WORK/hash.before" "$WORK/hash.after")
log "hash: kept $kept, moved from the removed server $from_gone (to $spread servers), moved otherwise $moved_other"
assert_eq 0 "$moved_other" "s5: keys of the servers that stay moved"
assert_ge "$kept" 900 "s5: keys on the same server after one of ten was removed"
assert_ge "$spread" 3 "s5: the removed server's keys spread over several servers"
out=$($IDC --url "http://127.0.0.1:$P/" -n 20 --per-conn 5 | awk '{print $3}' | sort -u | wc -l)
assert_eq 1 "$out" "s5: without X-User the key is the client address (one server)"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s5: ferry exits 0"
for pid in "${HPIDS[@]}"; do stop_pid "$pid"; done
fi

# ------------------------------------------------------------------ 6. outlier detection
if want 6; then
log "6. outlier detection"
start_backend -id o1 || finish; O1=$BACKEND_ADDR; O1PID=$BACKEND_PID
start_backend -id o2 || finish; O2=$BACKEND_ADDR; O2PID=$BACKEND_PID
start_backend -id x -root-status 500 || finish; X=$BACKEND_ADDR; XPID=$BACKEND_PID
hferry s6 --backend "$O1" --backend "$O2" --backend "$X" --workers 2 --upstream balance=round_robin \
    --upstream "outlier_detection={consecutive_failures: 3, count_5xx: true, base_ejection_time: 1s, \
max_ejection_time: 10s, max_ejection_percent: 50}" || finish
$IDC --url "http://127.0.0.1:$P/" -n 30 --per-conn 10 >"$WORK/s6.first"
assert_eq 3 "$(bstat "$X" requests)" "s6: requests the failing server got before its ejection"
assert_eq 3 "$(grep -c ' 500 x ' "$WORK/s6.first")" "s6: its 500s were relayed"
assert_eq 27 "$(grep -cE ' 200 o[12] ' "$WORK/s6.first")" "s6: the others served the rest"
assert_eq 1 "$(smetric ferry_upstream_ejections_total "$X")" "s6: ferry_upstream_ejections_total"
assert_eq 0 "$(healthy "$X")" "s6: ejected: ferry_upstream_server_healthy 0"
assert_eq True "$(status_server "$X" "['ejected']")" "s6: /status ejected"
assert_match "$(grep -F "server $X:" "$F_LOG")" '3 consecutive failures; ejected for 1000ms \(ejection 1\)' "s6: ejection logged"
t_ej=$(log_ms "$F_LOG" "server $X: 3 consecutive failures; ejected for")
$IDC --url "http://127.0.0.1:$P/" --until-id x --seconds 6 --gap-ms 10 >"$WORK/s6.wait"
assert_eq 0 "$?" "s6: the ejected server is tried again within 6 s"
t_back=$(tail -n1 "$WORK/s6.wait" | awk '{print $5}')
assert_between "$(( t_back - t_ej ))" 950 3000 "s6: ms from the ejection to its next request (base_ejection_time 1 s)"
assert_ge "$(grep -cE ' 200 o[12] ' "$WORK/s6.wait")" 5 "s6: the others served meanwhile"
assert_eq 0 "$(grep -cvE ' (200 o[12]|500 x) ' "$WORK/s6.wait")" "s6: no other answer meanwhile"
# Two more failures eject it again, for 2 x base.
$IDC --url "http://127.0.0.1:$P/" -n 12 --per-conn 12 >/dev/null
assert_match "$(grep -F "server $X:" "$F_LOG")" 'ejected for 2000ms \(ejection 2\)' "s6: the second ejection lasts 2 x base_ejection_time"
assert_eq 2 "$(smetric ferry_upstream_ejections_total "$X")" "s6: two ejections"
assert_eq 0 "$(smetric ferry_upstream_ejections_total "$O1")" "s6: the healthy servers were never ejected"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s6: ferry exits 0"
# max_ejection_percent 50 of three servers: of two failing ones, only one is out at a time.
start_backend -id y -root-status 503 || finish; Y=$BACKEND_ADDR; YPID=$BACKEND_PID
hferry s6-max --backend "$O1" --backend "$X" --backend "$Y" --workers 2 --upstream balance=round_robin \
    --upstream "outlier_detection={consecutive_failures: 2, base_ejection_time: 10s, max_ejection_percent: 50}" || finish
$IDC --url "http://127.0.0.1:$P/" -n 30 --per-conn 10 >"$WORK/s6.max"
assert_eq 1 "$(( $(smetric ferry_upstream_ejections_total "$X") + $(smetric ferry_upstream_ejections_total "$Y") ))" \
    "s6: ejections of two failing servers of three (max_ejection_percent 50)"
assert_eq 1 "$(json_get "$(status_json)" "sum(1 for s in j['upstreams'][0]['servers'] if s['ejected'])")" "s6: servers ejected now"
assert_ge "$(grep -cE ' 50[03] [xy] ' "$WORK/s6.max")" 6 "s6: the failing server not ejected still gets requests"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s6: ferry exits 0"
stop_pid "$O1PID"; stop_pid "$O2PID"; stop_pid "$XPID"; stop_pid "$YPID"
fi

# ------------------------------------------------------------------ 7. min_idle
if want 7; then
log "7. min_idle pre-warming"
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs
# own-connection-corrected backend gauges: /stats itself is one accepted, active connection
pooled() { local v; v=$(bstat "$1" active); [ -n "$v" ] && echo $((v - 1)); }
_pooled_is() { [ "$(pooled "$1")" = "$2" ]; }
_idle_is() { [ "$(mtotal ferry_upstream_connections_idle)" = "$1" ]; }
for kind in plain tls; do
    if [ $kind = plain ]; then
        start_backend -id m || finish; upx=()
    else
        start_backend -id m -tls "$C/localhost.crt:$C/localhost.key" || finish
        upx=(--upstream protocol=http1 --upstream "tls={server_name: localhost, ca_file: $C/ca.crt}")
    fi
    M=$BACKEND_ADDR; MPID=$BACKEND_PID
    hferry "s7-$kind" --backend "$M" --workers 2 --upstream min_idle=2 "${upx[@]}" || finish
    if [ $kind = tls ]; then
        bst() { tstat "$M" "$1"; }
        _tls_pooled_is() { local v; v=$(bst active); [ -n "$v" ] && [ $((v - 1)) = "$1" ]; }
        wait_for 5 _tls_pooled_is 4 || fail "s7 tls: backend does not hold 4 connections within 5 s"
        assert_eq 4 "$(( $(bst active) - 1 ))" "s7 tls: connections open at the backend before any request"
        a1=$(bst accepted); a2=$(bst accepted)
        assert_eq 0 "$(bst requests)" "s7 tls: no request"
    else
        wait_for 5 _pooled_is "$M" 4 || fail "s7 plain: backend does not hold 4 connections within 5 s"
        assert_eq 4 "$(pooled "$M")" "s7 plain: connections open at the backend before any request"
        a1=$(bstat "$M" accepted); a2=$(bstat "$M" accepted)
        assert_eq 0 "$(bstat "$M" requests)" "s7 plain: no request"
    fi
    assert_eq 1 "$(( a2 - a1 ))" "s7 $kind: no more connections made (only our /stats)"
    wait_for 5 _idle_is 4 || true
    assert_eq 4 "$(mtotal ferry_upstream_connections_idle)" "s7 $kind: ferry's idle connections (2 per worker)"
    assert_eq 4 "$(mtotal ferry_upstream_connections_opened_total)" "s7 $kind: opened"
    # A request uses a warm connection.
    assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s7 $kind: a request"
    assert_eq 4 "$(mtotal ferry_upstream_connections_opened_total)" "s7 $kind: still 4 opened (the request reused one)"
    stop_pid "$F_PID" TERM 10
    stop_pid "$MPID"
done
start_backend -health-path /healthz -id m2 || finish; M2=$BACKEND_ADDR; M2PID=$BACKEND_PID
hferry s7-health --backend "$M2" --workers 2 --upstream min_idle=2 --upstream "health_check={type: http, \
path: /healthz, interval: 200ms, timeout: 150ms, unhealthy_threshold: 2, healthy_threshold: 2}" || finish
wait_for 5 _idle_is 4 || fail "s7: 4 idle connections within 5 s"
wait_for 5 _pooled_is "$M2" 4 || fail "s7: backend holds 4 connections"
curl -sS --max-time 5 "http://$M2/health/fail" >/dev/null
wait_healthy "$M2" 0 5 || fail "s7: not marked down"
wait_for 5 _idle_is 0 || fail "s7: idle connections not closed when down"
assert_eq 4 "$(closed_health)" "s7: 4 connections closed with reason health"
wait_for 5 _pooled_is "$M2" 0 || fail "s7: the backend still holds connections while down"
assert_eq 0 "$(pooled "$M2")" "s7: the backend holds no connection while down"
curl -sS --max-time 5 "http://$M2/health/ok" >/dev/null
wait_healthy "$M2" 1 5 || fail "s7: not marked up"
wait_for 5 _idle_is 4 || fail "s7: not re-warmed within 5 s"
assert_eq 4 "$(mtotal ferry_upstream_connections_idle)" "s7: re-warmed: 4 idle connections"
assert_eq 8 "$(mtotal ferry_upstream_connections_opened_total)" "s7: 4 + 4 opened"
wait_for 5 _pooled_is "$M2" 4 || fail "s7: the backend does not hold 4 connections again"
assert_eq 4 "$(pooled "$M2")" "s7: the backend holds 4 connections again"
assert_eq 0 "$(bstat "$M2" requests)" "s7: no request needed for it"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s7: ferry exits 0"
stop_pid "$M2PID"
fi

# ------------------------------------------------------------------ 8. panic, initial
if want 8; then
log "8. panic and initial"
start_backend -health-path /healthz -health-fail -id p1 || finish; PB1=$BACKEND_ADDR; PB1PID=$BACKEND_PID
start_backend -health-path /healthz -health-fail -id p2 || finish; PB2=$BACKEND_ADDR; PB2PID=$BACKEND_PID
PHC="type: http, path: /healthz, interval: 200ms, timeout: 150ms, unhealthy_threshold: 2, healthy_threshold: 2"
hferry s8-panic --backend "$PB1" --backend "$PB2" --workers 2 --upstream "health_check={$PHC, panic: true}" || finish
PP=$P PAP=$AP PPID_=$F_PID
hferry s8-nopanic --backend "$PB1" --backend "$PB2" --workers 2 --upstream "health_check={$PHC, panic: false}" || finish
wait_healthy "$PB1" 0 5 || fail "s8: p1 not down"
wait_healthy "$PB2" 0 5 || fail "s8: p2 not down"
assert_eq 503 "$(http_status "http://127.0.0.1:$P/")" "s8: panic false, every server down: 503"
AP0=$AP; AP=$PAP
wait_healthy "$PB1" 0 5 || fail "s8 panic: p1 not down"
wait_healthy "$PB2" 0 5 || fail "s8 panic: p2 not down"
AP=$AP0
$IDC --url "http://127.0.0.1:$PP/" -n 10 --per-conn 5 >"$WORK/s8.panic"
assert_eq 10 "$(grep -cE ' 200 p[12] ' "$WORK/s8.panic")" "s8: panic true, every server down: requests still routed (200)"
assert_eq 2 "$(awk '{print $3}' "$WORK/s8.panic" | sort -u | wc -l)" "s8: panic true: to every server"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s8: ferry (panic false) exits 0"
stop_pid "$PPID_" TERM 10; assert_eq 0 "$STOP_STATUS" "s8: ferry (panic true) exits 0"
# initial: unhealthy on a healthy server: 503 until healthy_threshold checks passed.
curl -sS --max-time 5 "http://$PB1/health/ok" >/dev/null
hferry s8-initial --backend "$PB1" --workers 2 --upstream "health_check={type: http, path: /healthz, \
interval: 1s, timeout: 500ms, healthy_threshold: 2, initial: unhealthy}" || finish
assert_eq 503 "$(http_status "http://127.0.0.1:$P/")" "s8: initial unhealthy: 503 before any check passed"
assert_eq 0 "$(healthy "$PB1")" "s8: initial unhealthy: metric 0"
wait_healthy "$PB1" 1 5 || fail "s8: initial unhealthy server not up after 2 passed checks"
assert_ge "$(checks "$PB1" pass)" 2 "s8: up after 2 passed checks"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s8: 200 once up"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s8: ferry exits 0"
stop_pid "$PB1PID"; stop_pid "$PB2PID"
fi

# ------------------------------------------------------------------ 9. check protocols
if want 9; then
log "9. checks over h2 (TLS, ALPN), h2c, tcp; a check timing out"
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs
HC9="interval: 200ms, timeout: 150ms, unhealthy_threshold: 2, healthy_threshold: 2"
UPTLS="tls={server_name: localhost, ca_file: $C/ca.crt}"
start_backend -id t -tls "$C/localhost.crt:$C/localhost.key" -health-path /healthz || finish; T=$BACKEND_ADDR; TPID=$BACKEND_PID
for proto in h2 auto http1; do
    hferry "s9-$proto" --backend "$T" --workers 2 --upstream "protocol=$proto" --upstream "$UPTLS" \
        --upstream "health_check={type: http, path: /healthz, $HC9}" || finish
    wait_for 5 _checks_ge "$T" pass 2 || fail "s9 $proto: no 2 passed checks over TLS within 5 s"
    if [ $proto = http1 ]; then want_proto=HTTP/1.1; else want_proto=HTTP/2.0; fi
    assert_eq "GET $T ferry-health-check $want_proto" "$(tstat "$T" health_last)" "s9 $proto: the check over TLS (default Host: the server address)"
    assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s9 $proto: a request"
    assert_eq 0 "$(checks "$T" fail)" "s9 $proto: no failed check"
    if [ $proto = h2 ]; then
        curl -sS --max-time 5 --cacert "$C/ca.crt" "https://$T/health/fail" >/dev/null
        wait_healthy "$T" 0 5 || fail "s9 h2: 503 over h2 not marked down"
        assert_match "$(grep -F "server $T: unhealthy" "$F_LOG")" 'last: status 503' "s9 h2: down for status 503"
        curl -sS --max-time 5 --cacert "$C/ca.crt" "https://$T/health/ok" >/dev/null
        wait_healthy "$T" 1 5 || fail "s9 h2: not up again"
    fi
    stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s9 $proto: ferry exits 0"
done
stop_pid "$TPID"

start_backend -id hc -h2c -health-path /healthz || finish; H=$BACKEND_ADDR; HPID=$BACKEND_PID
hferry s9-h2c --backend "$H" --workers 2 --upstream protocol=h2c --upstream "health_check={type: http, path: /healthz, $HC9}" || finish
wait_for 5 _checks_ge "$H" pass 2 || fail "s9 h2c: no 2 passed checks within 5 s"
assert_eq "GET $H ferry-health-check HTTP/2.0" "$(bstat "$H" health_last)" "s9 h2c: the check is HTTP/2 (prior knowledge)"
stop_pid "$F_PID" TERM 10; stop_pid "$HPID"

start_backend -id tcp || finish; K=$BACKEND_ADDR; KPID=$BACKEND_PID; KPORT=$BACKEND_PORT
hferry s9-tcp --backend "$K" --workers 2 --upstream "health_check={type: tcp, $HC9}" || finish
wait_for 5 _checks_ge "$K" pass 2 || fail "s9 tcp: no 2 passed checks within 5 s"
assert_eq 0 "$(bstat "$K" requests)" "s9 tcp: a tcp check sends no request"
stop_pid "$KPID"
wait_healthy "$K" 0 5 || fail "s9 tcp: stopped server not marked down"
start_backend --port "$KPORT" -id tcp || fail "s9 tcp: restart"
wait_healthy "$K" 1 5 || fail "s9 tcp: restarted server not marked up"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s9 tcp: ferry exits 0"
stop_pid "$BACKEND_PID"

start_backend -id slowhc -delay 400ms || finish; D=$BACKEND_ADDR; DPID=$BACKEND_PID
hferry s9-timeout --backend "$D" --workers 2 --upstream "health_check={type: http, path: /, \
interval: 300ms, timeout: 100ms, unhealthy_threshold: 2}" || finish
wait_healthy "$D" 0 5 || fail "s9: a check answered after its timeout not marked down"
assert_match "$(grep -F "server $D: unhealthy" "$F_LOG")" 'last: timed out' "s9: down for timed out checks"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s9: ferry exits 0"
stop_pid "$DPID"
fi

# ------------------------------------------------------------------ 10. reloads vs checks
if want 10; then
log "10. reloads while checks are in flight"
start_backend -id r -delay 100ms || finish; R=$BACKEND_ADDR; RPID=$BACKEND_PID
start_backend -id r2 -health-path /healthz || finish; R2=$BACKEND_ADDR; R2PID=$BACKEND_PID
# Checks of r take 100 ms of every 150: a reload nearly always finds one in flight.
hferry s10 --backend "$R" --backend "$R2" --workers 2 --upstream "health_check={type: http, path: /, \
interval: 150ms, timeout: 140ms, unhealthy_threshold: 3, healthy_threshold: 1}" || finish
_reloads_ge() { local v; v=$(ferry_metric "127.0.0.1:$AP" 'ferry_config_reloads_total{result="ok"}'); [ -n "$v" ] && [ "$v" -ge "$1" ]; }
wait_for 5 _checks_ge "$R" pass 2 || fail "s10: checks do not pass"
for i in $(seq 1 10); do
    kill -HUP "$F_PID"
    wait_for 10 _reloads_ge "$i" || { fail "s10: reload $i not done within 10 s"; break; }
done
alive "$F_PID" && pass "s10: ferry alive after 10 reloads" || fail "s10: ferry died during reloads"
assert_eq 1 "$(healthy "$R")" "s10: r still healthy"
assert_eq 0 "$(checks "$R" fail)" "s10: no check failed because of a reload"
c0=$(checks "$R" pass)
wait_for 5 _checks_ge "$R" pass $((c0 + 3)) || fail "s10: checks stopped after the reloads"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s10: serving"
stop_pid "$F_PID" TERM 10; assert_eq 0 "$STOP_STATUS" "s10: ferry exits 0"
stop_pid "$RPID"; stop_pid "$R2PID"
fi

finish
