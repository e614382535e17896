#!/bin/bash
# Idle cleartext HTTP/1.1 client connections park (give back their buffers after 250 ms
# idle, ferry.yaml(5) CONNECTION MEMORY) and come back on the client's next bytes: requests,
# pipelined requests and request bodies after parking are served on the same connections
# and the same pooled upstream connections; a client's close of a parked connection and
# keepalive_timeout both end it; TLS connections never park; the gauge counts them.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
PT=$(pick_port); while [ "$PT" = "$P" ]; do PT=$(pick_port); done
A=$(pick_port); while [ "$A" = "$P" ] || [ "$A" = "$PT" ]; do A=$(pick_port); done
make_certs "$WORK/certs" || { fail "make certs"; finish; }
cat >"$WORK/ferry.yaml" <<YAML
workers: 2
error_log: stderr
log_level: info
admin:
  listen: 127.0.0.1:$A
listeners:
  - name: web
    listen: "127.0.0.1:$P"
    keepalive_timeout: 4s
    routes: [{upstream: be}]
  - name: tls
    listen: "127.0.0.1:$PT"
    keepalive_timeout: 4s
    tls:
      certificates:
        - cert: $WORK/certs/localhost.crt
          key: $WORK/certs/localhost.key
    routes: [{upstream: be}]
upstreams:
  be:
    servers: [{address: "$B"}]
YAML
start_ferry "$WORK/ferry.yaml" "$P" || finish
ADMIN=127.0.0.1:$A
N=60

accepted0=$(backend_stat "$B" accepted)
closed_of() { ferry_metric "$ADMIN" "ferry_listener_connections_closed_total{listener=\"web\",reason=\"$1\"}"; }
cc0=$(closed_of client_close)   # (start_ferry's probe)
log "$N idle connections through parking and back"
out=$($PY "$IT_DIR/parkclient.py" "127.0.0.1:$P" "$ADMIN" web $N 2>&1)
printf '%s\n' "$out" | sed 's/^/#   /'
for phase in first-requests parked after-parking parked-again client-closed parked-left \
             keepalive-timeout parked-none; do
    line=$(printf '%s\n' "$out" | grep "^$phase ")
    if [ -z "$line" ]; then
        fail "$phase: no result"
    elif [[ $line == *FAILED* ]]; then
        fail "$line"
    else
        pass "$line"
    fi
done
# Parking is downstream only: the pooled upstream connections carried everything. (2 workers,
# each may have opened a few while the first requests overlapped.)
opened=$(( $(backend_stat "$B" accepted) - accepted0 ))
assert_le "$opened" 8 "upstream connections opened for $((N * 7 / 3)) requests"
assert_eq 30 "$(( $(closed_of client_close) - cc0 ))" \
    "closes of parked connections counted as client_close"
assert_eq 30 "$(closed_of keepalive_timeout)" \
    "parked connections closed at keepalive_timeout"

log "TLS connections stay as they are"
_tls_idle() { [ "$(ferry_metric "$ADMIN" 'ferry_listener_connections_active{listener="tls"}')" = 1 ]; }
{ printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\n'; sleep 2; } |
    timeout 10 openssl s_client -quiet -connect "127.0.0.1:$PT" -servername localhost >"$WORK/tls.out" 2>/dev/null &
_track $!
if wait_for 5 _tls_idle && wait_grep "$WORK/tls.out" '^hello' 5; then
    # Idle for over 4 × the parking delay, the TLS connection is still not parked.
    _tls_unparked_1s() { [ "$(ferry_metric "$ADMIN" 'ferry_listener_connections_parked{listener="tls"}')" != 0 ]; }
    if wait_for 1 _tls_unparked_1s; then
        fail "a TLS connection was parked"
    else
        pass "an idle TLS connection is not parked"
    fi
else
    fail "TLS request did not complete ($(head -c 200 "$WORK/tls.out"))"
fi

log "graceful stop with parked connections"
_parked_ge() { [ "$(ferry_metric "$ADMIN" 'ferry_listener_connections_parked{listener="web"}')" -ge "$1" ] 2>/dev/null; }
$RAW "127.0.0.1:$P" 'send:GET / HTTP/1.1\r\nHost: a\r\n\r\n' read waitclose:10 >"$WORK/drain.out" 2>&1 &
_track $!
if wait_for 10 _parked_ge 1; then
    pass "connection parked"
    t0=$(now_ms)
    kill -TERM "$FERRY_PID"
    if wait_for 10 _exited "$FERRY_PID"; then
        pass "ferry stopped with a parked connection ($(( $(now_ms) - t0 )) ms)"
    else
        fail "ferry did not stop within 10 s"
    fi
    wait_grep "$WORK/drain.out" '^CLOSED' 5 && pass "the parked connection was closed" ||
        fail "the parked connection was not closed: $(cat "$WORK/drain.out")"
else
    fail "connection did not park"
fi
if grep -E '\[(error|crit)\]|AddressSanitizer|runtime error' "$FERRY_LOG" >/dev/null; then
    fail "errors in ferry's log: $(grep -E '\[(error|crit)\]|AddressSanitizer|runtime error' "$FERRY_LOG" | head -3)"
else
    pass "nothing worse than warn in ferry's log"
fi
finish
