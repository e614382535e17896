#!/bin/bash
# HTTP/2 to backends (upstream protocol h2c / h2 / auto):
#  1. h2c: HTTP/1.1 and HTTP/2 clients through ferry to a Go h2c backend: GET, 1 MB bodies both
#     ways (checksummed; Content-Length and chunked uploads), response trailers, statuses; the
#     backend sees HTTP/2.0.
#  2. multiplexing: workers: 1, 2000 requests from h2load (10 connections x 10 streams) and
#     2000 from 20 HTTP/1.1 keep-alive clients all ride ONE upstream connection; the backend
#     counts 4000 HTTP/2 requests; access log reused=1 for ~all.
#  3. the backend's SETTINGS_MAX_CONCURRENT_STREAMS (5) and the upstream's
#     max_concurrent_streams (2) bound the streams per connection: 20 concurrent slow requests
#     open 4, then 10 connections.
#  4. TLS: protocol h2 (ALPN h2, SNI, verification against ca_file), auto (h2 by ALPN; HTTP/1.1
#     from a backend offering only http/1.1), http1 over TLS, a wrong server_name fails
#     verification (502 + error log), TLS session resumption on the second connection.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs
CA=$C/ca.crt
BCERT=$C/localhost.crt:$C/localhost.key

# accepted_since ADDR BEFORE — connections the backend accepted since BEFORE (a value of
# backend_stat ... accepted), not counting the /stats connections themselves.
accepted_since() { echo $(( $(backend_stat "$1" accepted) - $2 - 1 )); }

# ---------------------------------------------------------------- 1. h2c basics
log "1. h2c upstream: methods, bodies, trailers"
start_backend -h2c || { fail "start h2c backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
ALOG=$WORK/access.h2c.log
make_config "$WORK/h2c.yaml" --port "$P" --backend "$B" --workers 1 --access-log "$ALOG" \
    --upstream protocol=h2c
start_ferry "$WORK/h2c.yaml" "$P" || finish
F=http://127.0.0.1:$P
direct=$("${CURL[@]}" "http://$B/big?bytes=5000000&chunked=1" | sha256sum | cut -d' ' -f1)
req0=$(backend_stat "$B" requests)   # the direct download above was HTTP/1.1
acc0=$(backend_stat "$B" accepted)

assert_eq "hello" "$("${CURL[@]}" "$F/")" "HTTP/1.1 client: GET / through h2c upstream"
assert_eq "hello" "$("${CURL[@]}" --http2-prior-knowledge "$F/")" "HTTP/2 client: GET / through h2c upstream"
h=$("${CURL[@]}" "$F/headers?x=1")
assert_eq "HTTP/2.0" "$(json_get "$h" 'j["proto"]')" "backend received an HTTP/1.1 client's request over HTTP/2"
assert_eq "127.0.0.1:$P" "$(json_get "$h" 'j["host"]')" "Host becomes :authority (the client's Host kept)"
assert_eq "/headers?x=1" "$(json_get "$h" 'j["uri"]')" "path and query kept"
h=$("${CURL[@]}" --http2-prior-knowledge -H 'X-Custom: yes' "$F/headers")
assert_eq "HTTP/2.0" "$(json_get "$h" 'j["proto"]')" "backend received an HTTP/2 client's request over HTTP/2"
assert_eq "yes" "$(json_get "$h" 'j["headers"]["X-Custom"][0]')" "request header forwarded"
assert_eq "['127.0.0.1']" "$(json_get "$h" 'str(j["headers"].get("X-Forwarded-For"))')" "X-Forwarded-For added"

head -c 1048576 /dev/urandom >"$WORK/up.bin"
want="1048576 $(sha256sum <"$WORK/up.bin" | cut -d' ' -f1)"
wantsum=$(sha256sum <"$WORK/up.bin" | cut -d' ' -f1)
assert_eq "$want" "$("${CURL[@]}" --data-binary @"$WORK/up.bin" "$F/sha256")" "1 MB upload, HTTP/1.1 Content-Length"
assert_eq "$want" "$("${CURL[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/up.bin" "$F/sha256")" "1 MB upload, HTTP/1.1 chunked"
assert_eq "$want" "$("${CURL[@]}" --http2-prior-knowledge --data-binary @"$WORK/up.bin" "$F/sha256")" "1 MB upload, HTTP/2 client"
assert_eq "$wantsum" "$("${CURL[@]}" --data-binary @"$WORK/up.bin" "$F/echo" | sha256sum | cut -d' ' -f1)" "1 MB echoed back, HTTP/1.1 client"
assert_eq "$wantsum" "$("${CURL[@]}" --http2-prior-knowledge --data-binary @"$WORK/up.bin" "$F/echo" | sha256sum | cut -d' ' -f1)" "1 MB echoed back, HTTP/2 client"
assert_eq "$direct" "$("${CURL[@]}" "$F/big?bytes=5000000&chunked=1" | sha256sum | cut -d' ' -f1)" "5 MB download without Content-Length (HTTP/1.1 client)"
assert_eq "$direct" "$("${CURL[@]}" --http2-prior-knowledge "$F/big?bytes=5000000" | sha256sum | cut -d' ' -f1)" "5 MB download (HTTP/2 client)"
h=$("${CURL[@]}" -X PUT --data-binary 'abcdefgh' "$F/headers")
assert_eq "PUT 8" "$(json_get "$h" 'j["method"] + " " + str(j["body_len"])')" "PUT with a body: method and length at the backend"
assert_eq "404" "$(http_status "$F/status/404")" "status 404 relayed"
assert_eq "204" "$(http_status "$F/status/204")" "status 204 relayed"
assert_eq "201" "$(http_status "$F/status/201" --http2-prior-knowledge)" "status 201 relayed to an HTTP/2 client"
out=$("${CURL[@]}" -sS -I "$F/big?bytes=1234")
assert_match "$out" '^HTTP/1.1 200' "HEAD answered"
assert_match "$(tr -d '\r' <<<"$out")" '^[Cc]ontent-[Ll]ength: 1234$' "HEAD keeps Content-Length"

out=$($RAW --body "127.0.0.1:$P" 'send:GET /chunked HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n' read)
assert_contains "$out" "BODYTEXT b'chunk-0\\nchunk-1\\nchunk-2\\nchunk-3\\nchunk-4\\n'" "HTTP/1.1 client: /chunked body"
# (HTTP/2 field names are lower case; HTTP/1.1 names are case-insensitive)
assert_match "$out" '^T (X-Trailer-One|x-trailer-one): one$' "HTTP/1.1 client: trailer X-Trailer-One from an h2 backend"
assert_match "$out" '^T (X-Trailer-Sum|x-trailer-sum): 40$' "HTTP/1.1 client: trailer X-Trailer-Sum from an h2 backend"
out=$($H2PEER --body "127.0.0.1:$P" hdr:te:trailers 'get:/chunked?last=1' wait)
assert_match "$out" '^RESP 1 200' "HTTP/2 client: /chunked status"
assert_match "$out" '^T 1 x-trailer-one: one$' "HTTP/2 client: trailer x-trailer-one"
assert_match "$out" '^T 1 x-trailer-sum: 40$' "HTTP/2 client: trailer x-trailer-sum"

wait_grep "$ALOG" 'chunked\?last=1' 5
assert_match "$(tail -n1 "$ALOG")" " upstream=$B ustatus=200 " "access log names the upstream server"
n=$(wc -l <"$ALOG")
r=$(grep -c ' reused=1 ' "$ALOG")
assert_ge "$r" $((n - 2)) "access log: all but the first requests reused the h2 connection ($r of $n)"
assert_eq 1 "$(accepted_since "$B" "$acc0")" "every request of part 1 went over one upstream connection"
st=$("${CURL[@]}" "http://$B/stats")
assert_eq "$(json_get "$st" "j['requests'] - $req0")" "$(json_get "$st" 'j["h2_requests"]')" "backend: every request through ferry arrived over HTTP/2"
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "ferry exits 0 on SIGTERM with an h2 upstream connection open"

# ---------------------------------------------------------------- 2. multiplexing
log "2. multiplexing: one upstream connection for everything"
start_backend -h2c || { fail "start h2c backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
ALOG=$WORK/access.mux.log
make_config "$WORK/mux.yaml" --port "$P" --backend "$B" --workers 1 --access-log "$ALOG" \
    --upstream protocol=h2c --upstream keepalive_requests=0   # (default 1000 streams per connection)
start_ferry "$WORK/mux.yaml" "$P" || finish
acc0=$(backend_stat "$B" accepted)
out=$(timeout 60 h2load -n 2000 -c 10 -m 10 "http://127.0.0.1:$P/" 2>&1)
printf '%s\n' "$out" | grep -E '^(finished|requests|status codes)' | sed 's/^/#   /'
assert_match "$out" 'requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed' "h2load: 2000 requests (10 x 10 streams) succeeded"
assert_match "$out" 'status codes: 2000 2xx' "h2load: all 2xx"
out=$("$BIN/loadclient" -url "http://127.0.0.1:$P/" -c 20 -n 2000 -deadline 60s 2>&1)
log "loadclient: $(echo $out)"
assert_match "$out" "ok=2000 err=0" "loadclient: 2000 HTTP/1.1 requests from 20 clients succeeded"
assert_eq 1 "$(accepted_since "$B" "$acc0")" "backend accepted ONE connection for 4000 requests"
assert_eq 4000 "$(backend_stat "$B" h2_requests)" "backend served 4000 HTTP/2 requests (no duplicates, none lost)"
wait_lines "$ALOG" 4000 15 || fail "access log has $(wc -l <"$ALOG") lines, expected 4000"
r=$(grep -c ' reused=1 ' "$ALOG")
assert_ge "$r" 3960 "access log: >= 99% of 4000 requests reused=1 ($r)"
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "ferry exits 0"

# ---------------------------------------------------------------- 3. stream limits
log "3. SETTINGS_MAX_CONCURRENT_STREAMS 5 at the backend, max_concurrent_streams at ferry"
# slow20 NAME CONFIG-ARGS... — 20 concurrent /sleep?ms=500 through a fresh ferry to a fresh
# backend (-max-streams 5); sets ACC (upstream connections) and ELAPSED_MS.
slow20() {
    local name=$1; shift
    start_backend -h2c -max-streams 5 || { fail "start backend"; return 1; }
    local b=$BACKEND_ADDR p; p=$(pick_port)
    make_config "$WORK/$name.yaml" --port "$p" --backend "$b" --workers 1 \
        --access-log "$WORK/access.$name.log" --upstream protocol=h2c "$@"
    start_ferry "$WORK/$name.yaml" "$p" || return 1
    local a0; a0=$(backend_stat "$b" accepted)
    local t0; t0=$(now_ms)
    out=$(timeout 30 h2load -n 20 -c 1 -m 20 "http://127.0.0.1:$p/sleep?ms=500" 2>&1)
    ELAPSED_MS=$(( $(now_ms) - t0 ))
    assert_match "$out" 'requests: 20 total, 20 started, 20 done, 20 succeeded, 0 failed' "$name: 20 concurrent slow requests succeeded"
    ACC=$(accepted_since "$b" "$a0")
    assert_eq 20 "$(backend_stat "$b" h2_requests)" "$name: backend served each request once"
    log "$name: $ACC upstream connections, ${ELAPSED_MS} ms"
    stop_pid "$FERRY_PID" TERM 10
    stop_pid "$BACKEND_PID"
}
slow20 ms-default
assert_eq 4 "$ACC" "backend limit 5 streams: 20 concurrent requests open ceil(20/5) = 4 connections"
assert_le "$ELAPSED_MS" 2500 "and run concurrently (20 x 500 ms in ${ELAPSED_MS} ms)"
slow20 ms-2 --upstream max_concurrent_streams=2
assert_eq 10 "$ACC" "upstream max_concurrent_streams 2: 20 concurrent requests open 10 connections"
assert_le "$ELAPSED_MS" 2500 "and run concurrently (20 x 500 ms in ${ELAPSED_MS} ms)"

# ---------------------------------------------------------------- 4. TLS
log "4. TLS upstreams: h2 (ALPN), auto, http1 over TLS, verification, resumption"
start_backend -tls "$BCERT" || { fail "start TLS backend"; finish; }
BT=$BACKEND_ADDR
start_backend -tls "$BCERT" -no-h2 || { fail "start TLS http/1.1-only backend"; finish; }
BT1=$BACKEND_ADDR
TLSOK="tls={server_name: localhost, ca_file: $CA}"
bstat() { "${CURL[@]}" --cacert "$CA" "https://localhost:${1##*:}/stats" | $PY -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

# tls_case NAME BACKEND UPSTREAM-ARGS... — a fresh ferry; sets TP (its port), TLOG (error log).
tls_case() {
    local name=$1 b=$2; shift 2
    TP=$(pick_port)
    make_config "$WORK/$name.yaml" --port "$TP" --backend "$b" --workers 1 \
        --access-log "$WORK/access.$name.log" "$@"
    start_ferry "$WORK/$name.yaml" "$TP" || return 1
    TLOG=$FERRY_LOG
}

tls_case h2tls "$BT" --upstream protocol=h2 --upstream "$TLSOK"
h=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
assert_eq "HTTP/2.0 h2 localhost" "$(json_get "$h" 'j["proto"] + " " + j["tls_alpn"] + " " + j["tls_server_name"]')" "protocol h2: HTTP/2 over TLS (ALPN h2, SNI localhost)"
assert_eq "$want" "$("${CURL[@]}" --http2-prior-knowledge --data-binary @"$WORK/up.bin" "http://127.0.0.1:$TP/sha256")" "protocol h2: 1 MB upload intact"
out=$(timeout 30 h2load -n 500 -c 5 -m 10 "http://127.0.0.1:$TP/" 2>&1)
assert_match "$out" 'requests: 500 total, 500 started, 500 done, 500 succeeded, 0 failed' "protocol h2: 500 multiplexed requests"
stop_pid "$FERRY_PID" TERM 10

tls_case auto-h2 "$BT" --upstream protocol=auto --upstream "$TLSOK"
h=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
assert_eq "HTTP/2.0 h2" "$(json_get "$h" 'j["proto"] + " " + j["tls_alpn"]')" "protocol auto, backend offers h2: HTTP/2 chosen by ALPN"
stop_pid "$FERRY_PID" TERM 10

tls_case auto-h1 "$BT1" --upstream protocol=auto --upstream "$TLSOK"
h=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
assert_eq "HTTP/1.1 http/1.1" "$(json_get "$h" 'j["proto"] + " " + j["tls_alpn"]')" "protocol auto, backend offers only http/1.1: falls back to HTTP/1.1"
assert_eq "$want" "$("${CURL[@]}" --http2-prior-knowledge --data-binary @"$WORK/up.bin" "http://127.0.0.1:$TP/sha256")" "protocol auto (HTTP/1.1 chosen): 1 MB upload intact"
out=$("$BIN/loadclient" -url "http://127.0.0.1:$TP/" -c 10 -n 500 -deadline 60s 2>&1)
assert_match "$out" "ok=500 err=0" "protocol auto (HTTP/1.1 chosen): 500 requests from 10 clients"
stop_pid "$FERRY_PID" TERM 10

tls_case h1tls "$BT" --upstream "$TLSOK"
h=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
assert_eq "HTTP/1.1 localhost" "$(json_get "$h" 'j["proto"] + " " + j["tls_server_name"]')" "protocol http1 with tls: HTTPS upstream, HTTP/1.1 (SNI localhost)"
assert_ne "h2" "$(json_get "$h" 'j["tls_alpn"]')" "protocol http1 does not negotiate h2"
stop_pid "$FERRY_PID" TERM 10

# openssl s_server takes the client's order of TLS 1.3 suites (as nginx does by default); its
# -www page names the suite. ferry offers AES-128-GCM first (OpenSSL's own order: AES-256).
SP=$(pick_port)
openssl s_server -accept "127.0.0.1:$SP" -cert "$C/localhost.crt" -key "$C/localhost.key" \
    -tls1_3 -www -quiet </dev/null >"$WORK/s_server.out" 2>&1 &
_track $!
wait_for 10 port_listening "$SP" || fail "openssl s_server did not listen"
tls_case ssrv "127.0.0.1:$SP" --upstream "$TLSOK"
out=$("${CURL[@]}" "http://127.0.0.1:$TP/")
assert_match "$out" 'Cipher is TLS_AES_128_GCM_SHA256' "TLS 1.3 upstream: ferry offers AES-128-GCM first (OpenSSL s_server follows the client)"
stop_pid "$FERRY_PID" TERM 10

tls_case badname "$BT" --upstream protocol=h2 --upstream "tls={server_name: wrong.test, ca_file: $CA}"
assert_eq 502 "$(http_status "http://127.0.0.1:$TP/")" "server_name not in the backend's certificate: 502"
wait_grep "$TLOG" '[Vv]erif' 5
assert_match "$(cat "$TLOG")" '[Vv]erif' "error log says the certificate verification failed"
stop_pid "$FERRY_PID" TERM 10

tls_case noca "$BT" --upstream protocol=h2 --upstream "tls={server_name: localhost}"
assert_eq 502 "$(http_status "http://127.0.0.1:$TP/")" "certificate from an unknown CA (system trust store): 502"
stop_pid "$FERRY_PID" TERM 10

tls_case noverify "$BT" --upstream protocol=h2 --upstream "tls={server_name: wrong.test, verify: false}"
assert_eq 200 "$(http_status "http://127.0.0.1:$TP/")" "verify: false accepts the certificate"
stop_pid "$FERRY_PID" TERM 10

log "TLS session resumption"
tls_case resume-h1 "$BT" --upstream "$TLSOK" --upstream keepalive_requests=1
h1=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
h2=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
assert_eq "False" "$(json_get "$h1" 'j["tls_resumed"]')" "http1 over TLS: first connection is a full handshake"
assert_eq "True" "$(json_get "$h2" 'j["tls_resumed"]')" "http1 over TLS (keepalive_requests 1): second connection resumed the session"
stop_pid "$FERRY_PID" TERM 10

# h2: the backend closes the connection after 300 ms idle, so the second request needs a new one.
start_backend -tls "$BCERT" -idle-timeout 300ms || { fail "start TLS backend"; finish; }
BTI=$BACKEND_ADDR
tls_case resume-h2 "$BTI" --upstream protocol=h2 --upstream "$TLSOK"
h1=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
_bt_idle() { [ "$(bstat "$BTI" active)" -le 1 ]; }   # 1 = the /stats connection
wait_for 5 _bt_idle || fail "TLS backend did not close its idle h2 connection"
h2=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
assert_eq "HTTP/2.0 False" "$(json_get "$h1" 'j["proto"] + " " + str(j["tls_resumed"])')" "h2: first connection is a full handshake"
assert_eq "HTTP/2.0 True" "$(json_get "$h2" 'j["proto"] + " " + str(j["tls_resumed"])')" "h2: the next connection resumed the session"
assert_ne "$(json_get "$h1" 'j["remote"]')" "$(json_get "$h2" 'j["remote"]')" "h2: the two requests came over two connections"
finish
