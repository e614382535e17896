#!/bin/bash
# ferry's own TLS on upstream connections (tls_handshake's client side, then a sockio over
# OpenSSL with read-ahead, as on client connections):
#  1. reuse: HTTP/1.1 and HTTP/2 over TLS carry many requests on few connections (the Go
#     backend counts them), and ferry reads and writes each request in about one socket call
#     per side (strace -c; skipped when strace is missing).
#  2. bodies both ways over both protocols: 16 MiB up and down, checksummed; uploads into a
#     backend that reads slowly (reading from the client pauses at the output watermark);
#     a client that reads slowly (the backend's records wait in the kernel, not in ferry:
#     RSS stays bounded).
#  3. records and closes (Python's ssl backend): a response of 2,000 one-byte records in one
#     burst arrives whole (records OpenSSL holds are delivered without a socket event); a
#     response followed at once by close_notify and the TCP close arrives whole, and the next
#     request goes to a new connection without an error; ferry ends the connections it closes
#     (keepalive_requests reached, idle timeout, shutdown) with close_notify.
#  4. a backend that closes idle TLS connections (Go -idle-timeout): ferry evicts them as they
#     close (peer_idle_close) and no request fails.
#  5. a backend that accepts TCP and never answers the ClientHello: 504 once connect_timeout +
#     handshake_timeout have passed, "TLS handshake: timed out" in the log.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs
CA=$C/ca.crt
TLSUP="tls={server_name: localhost, ca_file: $CA}"

start_backend -tls "$C/localhost.crt:$C/localhost.key" || { fail "start TLS backend"; finish; }
B=$BACKEND_ADDR
BURL=https://localhost:$BACKEND_PORT
BCURL=(--cacert "$CA" --resolve "localhost:$BACKEND_PORT:127.0.0.1")

# tls_ferry NAME PROTOCOL [mkconfig args...] — a fresh ferry (one worker, admin listener) in
# front of the Go TLS backend; sets F (its URL), ADMIN and TLOG.
tls_ferry() {
    local name=$1 proto=$2; shift 2
    local p a
    p=$(pick_port) && a=$(pick_port) || return 1
    make_config "$WORK/$name.yaml" --port "$p" --backend "${BACKEND_FOR:-$B}" --workers 1 \
        --global "admin={listen: 127.0.0.1:$a}" --upstream protocol="$proto" \
        --upstream "$TLSUP" "$@" || return 1
    start_ferry "$WORK/$name.yaml" "$p" || return 1
    F=http://127.0.0.1:$p
    ADMIN=127.0.0.1:$a
    TLOG=$FERRY_LOG
}

# stats_now — "ACCEPTED REQUESTS" of the Go backend so far (the query is a connection too).
stats_now() { curl -sS --max-time 5 "${BCURL[@]}" "$BURL/stats" | $PY -c "import json,sys; j=json.load(sys.stdin); print(j['accepted'], j['requests'])"; }

# ---------------------------------------------------------------- 1. reuse, socket calls
log "1. reuse over TLS: HTTP/1.1 and HTTP/2 upstreams"
for proto in http1 h2; do
    # (keepalive_requests above the default 1000, which also caps h2 streams per connection)
    tls_ferry "reuse-$proto" "$proto" --upstream keepalive_requests=100000 || finish
    # One request first: the h2 connection is up before 8 clients start at once (until its
    # handshake is done, more of them would each dial).
    assert_eq "hello" "$(curl -sS --max-time 10 "$F/")" "$proto over TLS: first request"
    read -r acc0 req0 < <(stats_now)
    out=$(timeout 60 h2load --h1 -c 8 -n 2000 "$F/" 2>&1)
    assert_match "$out" 'requests: 2000 total, 2000 started, 2000 done, 2000 succeeded' "$proto over TLS: 2000 requests from 8 clients succeed"
    read -r acc1 req1 < <(stats_now)
    opened=$(( acc1 - acc0 - 1 ))   # (the second /stats query is a connection too)
    if [ "$proto" = h2 ]; then
        assert_eq 0 "$opened" "h2 over TLS: 2000 requests on the one upstream connection (none opened)"
    else
        assert_le "$opened" 7 "http1 over TLS: 2000 requests on at most 8 upstream connections ($opened more opened)"
    fi
    assert_ge "$(( req1 - req0 ))" 2000 "$proto over TLS: the backend served every request"
    # (not under valgrind, where the process is valgrind's)
    if command -v strace >/dev/null && [ "$proto" = http1 ] && [[ $FERRY != *valgrind* ]]; then
        # One worker: its thread makes every socket call. Per request: a recv and a send on
        # the client side, one SSL_read (one read(2) with read-ahead) and one SSL_write (one
        # write(2)) on the upstream side; libevent's OpenSSL bufferevent made two reads per
        # record and two epoll_ctl per flush (7 of these calls per request).
        strace -f -c -o "$WORK/strace.out" -p "$FERRY_PID" 2>/dev/null &
        spid=$!
        _strace_on() { grep -q TracerPid:.*[1-9] "/proc/$FERRY_PID/status"; }
        wait_for 10 _strace_on
        out=$(timeout 60 h2load --h1 -c 8 -n 4000 "$F/" 2>&1)
        kill -INT "$spid"; wait "$spid" 2>/dev/null
        # reads, writes and epoll_ctl (other calls differ by build: ASan adds its own)
        calls=$(awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF ~ /^(read|write|recvfrom|sendmsg|sendto|recvmsg|readv|writev|epoll_ctl)$/ { c += $4 } END { print c + 0 }' "$WORK/strace.out")
        per100=$(( calls * 100 / 4000 ))
        log "socket calls per request over TLS (x100): $per100; $(awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {printf "%s=%d ", $NF, $4}' "$WORK/strace.out")"
        assert_le "$per100" 450 "http1 over TLS: at most 4.5 reads, writes and epoll_ctl per proxied request ($per100/100)"
    fi
    stop_pid "$FERRY_PID" TERM 10
done

# ---------------------------------------------------------------- 2. bodies, backpressure
log "2. bodies over TLS, a slow backend, a slow client"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$WORK/up.bin"
want="16777216 $(sha256sum <"$WORK/up.bin" | cut -d' ' -f1)"
N=$((16 * 1024 * 1024))
down=$(curl -sS --max-time 30 "${BCURL[@]}" "$BURL/big?bytes=$N" | sha256sum | cut -d' ' -f1)
for proto in http1 h2; do
    tls_ferry "bodies-$proto" "$proto" || finish
    assert_eq "$want" "$(curl -sS --max-time 30 --data-binary @"$WORK/up.bin" "$F/sha256")" "$proto over TLS: 16 MiB upload arrives whole"
    assert_eq "$down" "$(curl -sS --max-time 30 "$F/big?bytes=$N" | sha256sum | cut -d' ' -f1)" "$proto over TLS: 16 MiB download arrives whole"
    assert_eq "16777216" "$(curl -sS --max-time 30 --data-binary @"$WORK/up.bin" "$F/slowsink?kbps=16384")" "$proto over TLS: 16 MiB into a backend reading 16 MiB/s arrives whole"
    rss0=$(ferry_rss_kb "$FERRY_PID")
    # 16 MiB at 4 MiB/s: the backend writes much faster than that; what ferry does not pass
    # on must stay in the sockets (flow control), not pile up in ferry.
    got=$(curl -sS --max-time 30 --limit-rate 4M "$F/big?bytes=$N" | sha256sum | cut -d' ' -f1)
    assert_eq "$down" "$got" "$proto over TLS: 16 MiB to a client reading 4 MiB/s arrives whole"
    rss1=$(ferry_rss_kb "$FERRY_PID")
    if ! ferry_rss_unreliable; then
        assert_le "$(( rss1 - rss0 ))" 8192 "$proto over TLS: ferry's RSS grew by at most 8 MiB for the slow 16 MiB download ($(( rss1 - rss0 )) kB)"
    fi
    stop_pid "$FERRY_PID" TERM 10
done

# ---------------------------------------------------------------- 3. records and closes
log "3. record bursts and close_notify (Python ssl backend)"
TB_LOG=$WORK/tlsbackend.log
: >"$TB_LOG"
TBP=$(pick_port)
$PY "$IT_DIR/tlsbackend.py" --listen "127.0.0.1:$TBP" --cert "$C/localhost.crt" \
    --key "$C/localhost.key" --log "$TB_LOG" >"$WORK/tlsbackend.out" 2>&1 &
_track $!
wait_for 10 _read_listen "$WORK/tlsbackend.out" || { fail "start tlsbackend.py"; finish; }
BACKEND_FOR=127.0.0.1:$TBP tls_ferry records http1 --upstream keepalive_timeout=1s || finish
body=$(curl -sS --max-time 10 "$F/records?n=2000")
assert_eq "2000" "${#body}" "2000 one-byte records written back to back: the whole body arrives"
assert_eq "ok" "$(curl -sS --max-time 10 "$F/")" "the same connection serves the next request"
assert_eq "1" "$(grep -c '^open ' "$TB_LOG")" "... on one upstream connection"
assert_eq "bye" "$(curl -sS --max-time 10 "$F/notify")" "a response followed at once by close_notify and the close arrives whole"
assert_eq "200" "$(http_status "$F/")" "the next request after the backend's close_notify succeeds"
assert_eq "2" "$(grep -c '^open ' "$TB_LOG")" "... on a new upstream connection"
assert_not_contains "$(cat "$TLOG")" "[warn]" "no warning in ferry's log for the backend's close_notify"
# ferry's idle timeout (1 s) closes connection 2: with close_notify.
wait_grep "$TB_LOG" '^end 2 ' 10
assert_eq "end 2 close_notify" "$(grep '^end 2 ' "$TB_LOG")" "ferry's idle timeout ends the connection with close_notify"
stop_pid "$FERRY_PID" TERM 10

BACKEND_FOR=127.0.0.1:$TBP tls_ferry limit http1 --upstream keepalive_requests=1 || finish
n0=$(grep -c '^open ' "$TB_LOG")
assert_eq "ok" "$(curl -sS --max-time 10 "$F/")" "keepalive_requests 1: request served"
_end_logged() { [ "$(grep -c '^end ' "$TB_LOG")" -ge $((n0 + 1)) ]; }
wait_for 10 _end_logged
assert_eq "end $((n0 + 1)) close_notify" "$(grep "^end $((n0 + 1)) " "$TB_LOG")" "keepalive_requests reached: ferry closes with close_notify"
stop_pid "$FERRY_PID" TERM 10

BACKEND_FOR=127.0.0.1:$TBP tls_ferry shutdown http1 || finish
n0=$(grep -c '^open ' "$TB_LOG")
assert_eq "ok" "$(curl -sS --max-time 10 "$F/")" "a connection left idle: request served"
stop_pid "$FERRY_PID" TERM 10
wait_for 10 _end_logged
assert_eq "end $((n0 + 1)) close_notify" "$(grep "^end $((n0 + 1)) " "$TB_LOG")" "idle connections closed at shutdown end with close_notify"

# ---------------------------------------------------------------- 4. backend idle closes
log "4. a TLS backend closing idle connections after 300 ms"
start_backend -tls "$C/localhost.crt:$C/localhost.key" -idle-timeout 300ms || { fail "start idle TLS backend"; finish; }
BACKEND_FOR=$BACKEND_ADDR tls_ferry idle http1 || finish
SRV="upstream=\"be\",server=\"$BACKEND_ADDR\""
closes() { local v; v=$(ferry_metric "$ADMIN" "ferry_upstream_connections_closed_total{$SRV,reason=\"$1\"}"); echo "${v:-0}"; }
# The backend's close of an idle connection (peer_idle_close) — or, once ferry has learned
# that idle timeout from two of them, ferry's own earlier close (idle_timeout).
idle_closes() { echo $(( $(closes peer_idle_close) + $(closes idle_timeout) )); }
_idle_closed() { [ "$1" -lt "$(idle_closes)" ]; }
bad=0
for i in 1 2 3 4; do
    before=$(idle_closes)
    [ "$(http_status "$F/")" = 200 ] || bad=$((bad + 1))
    wait_for 10 _idle_closed "$before" || fail "round $i: no idle close within 10 s"
done
assert_eq 0 "$bad" "every request after an idle close succeeds"
assert_ge "$(closes peer_idle_close)" 2 "the backend's idle closes counted as peer_idle_close"
assert_eq 4 "$(idle_closes)" "each idle connection closed once, by the backend or (learned) by ferry"
assert_eq 0 "$(closes error)" "no connection closed on an error"
assert_no_match "$(cat "$TLOG")" '\[(warn|error)\]' "no warning or error in ferry's log"
stop_pid "$FERRY_PID" TERM 10

# ---------------------------------------------------------------- 5. a silent backend
log "5. a backend that never answers the ClientHello"
SP=$(pick_port)
# listening, never accepting: the kernel completes the TCP handshake, nobody reads
$PY -c "import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SP)); s.listen(16); print('LISTEN 127.0.0.1:$SP', flush=True); time.sleep(120)" \
    >"$WORK/silent.out" 2>&1 &
_track $!
wait_for 10 _read_listen "$WORK/silent.out" || { fail "start the silent backend"; finish; }
TLSUP="tls={server_name: localhost, ca_file: $CA, handshake_timeout: 400ms}"
BACKEND_FOR=127.0.0.1:$SP tls_ferry silent http1 --upstream connect_timeout=300ms --upstream retries=0 || finish
t0=$(now_ms)
assert_eq 504 "$(http_status "$F/")" "a backend silent after the TCP connect: 504"
took=$(( $(now_ms) - t0 ))
assert_between "$took" 600 3000 "... after connect_timeout + handshake_timeout (700 ms; took $took ms)"
wait_grep "$TLOG" 'TLS handshake: timed out' 5
assert_match "$(cat "$TLOG")" "upstream be server 127.0.0.1:$SP: TLS handshake: timed out" "the log names the handshake timeout"
stop_pid "$FERRY_PID" TERM 10

finish
