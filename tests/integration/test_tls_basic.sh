#!/bin/bash
# TLS listener: ALPN (h2, http/1.1), SNI certificate selection, session resumption for TLS 1.2
# and 1.3 (also across 2 workers), handshake_timeout (silent, stalled and dribbling clients),
# plain HTTP sent to a TLS port, the order of TLS 1.3 suites, and min_version TLSv1.3.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/tls.yaml" --port "$P" --backend "$B" --workers 2 --log-level debug \
    --tls-cert "$C/localhost.crt:$C/localhost.key" --tls-cert "$C/alt.crt:$C/alt.key" \
    --tls 'alpn=[h2, http/1.1]' --tls session_tickets=true --tls handshake_timeout=1s
start_ferry "$WORK/tls.yaml" "$P" || finish
TLS_LOG=$FERRY_LOG   # this instance (workers: 2) logs each handshake with its worker
P13=$(pick_port)
make_config "$WORK/tls13.yaml" --port "$P13" --backend "$B" \
    --tls-cert "$C/localhost.crt:$C/localhost.key" --tls min_version=TLSv1.3 \
    --tls ciphersuites=TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256
start_ferry "$WORK/tls13.yaml" "$P13" || finish

# sc ARGS... — openssl s_client against ferry with no input, bounded
sc() { timeout 10 openssl s_client -connect "127.0.0.1:$P" "$@" </dev/null 2>&1; }
subj() { printf '%s\n' "$1" | openssl x509 -noout -subject 2>/dev/null | sed 's/ //g'; }

log "ALPN"
out=$(sc -alpn h2,http/1.1)
assert_match "$out" 'ALPN protocol: h2$' "ALPN h2,http/1.1 -> h2"
out=$(sc -alpn http/1.1)
assert_match "$out" 'ALPN protocol: http/1.1$' "ALPN http/1.1 -> http/1.1"
out=$(sc)
assert_match "$out" 'No ALPN negotiated' "no ALPN offered: handshake succeeds without ALPN"
assert_eq 200 "$(http_status "https://127.0.0.1:$P/" --cacert "$C/ca.crt" --http1.1 --no-alpn)" "HTTP/1.1 without ALPN served"

log "SNI"
assert_eq "subject=CN=localhost" "$(subj "$(sc)")" "no SNI: default (first) certificate"
assert_eq "subject=CN=localhost" "$(subj "$(sc -servername localhost)")" "SNI localhost: localhost certificate"
assert_eq "subject=CN=alt.test" "$(subj "$(sc -servername alt.test)")" "SNI alt.test: alt certificate"
assert_eq "subject=CN=alt.test" "$(subj "$(sc -servername x.wild.test)")" "SNI x.wild.test: alt certificate (wildcard SAN)"
assert_eq "subject=CN=localhost" "$(subj "$(sc -servername unknown.example)")" "unknown SNI: default certificate"
out=$(sc -servername alt.test -CAfile "$C/ca.crt" -verify_hostname alt.test -verify_return_error)
assert_match "$out" 'Verify return code: 0 \(ok\)' "alt.test chain verifies against the test CA"
out=$(sc -servername x.wild.test | openssl x509 -noout -ext subjectAltName 2>/dev/null)
assert_contains "$out" "*.wild.test" "alt certificate carries the wildcard SAN"
out=$(curl -sS --max-time 10 --cacert "$C/ca.crt" --resolve "alt.test:$P:127.0.0.1" -w ' %{http_version}' "https://alt.test:$P/")
assert_eq "hello 2" "$out" "curl to https://alt.test verifies and gets h2"

_handshakes_logged() { [ "$(grep -c 'TLS handshake in worker' "$TLS_LOG")" -ge "$1" ]; }
log "session resumption (workers: 2, 10 rounds each)"
resume12=0; resume13=0; ver12=0; ver13=0
hs0=$(grep -c 'TLS handshake in worker' "$TLS_LOG")
for i in $(seq 1 10); do
    rm -f "$WORK/s12" "$WORK/s13"
    sc -tls1_2 -sess_out "$WORK/s12" >/dev/null
    out=$(sc -tls1_2 -sess_in "$WORK/s12")
    grep -q '^Reused, TLSv1.2' <<<"$out" && resume12=$((resume12 + 1))
    grep -q 'Protocol *: TLSv1.2' <<<"$out" && ver12=$((ver12 + 1))
    # TLS 1.3 tickets come after the handshake: exchange a request before saving the session.
    printf 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | \
        timeout 10 openssl s_client -connect "127.0.0.1:$P" -tls1_3 -alpn http/1.1 -ign_eof -sess_out "$WORK/s13" >"$WORK/s13.first" 2>&1
    out=$(sc -tls1_3 -sess_in "$WORK/s13")
    grep -q '^Reused, TLSv1.3' <<<"$out" && resume13=$((resume13 + 1))
done
assert_eq 10 "$resume12" "TLS 1.2: 10 of 10 sessions resumed (Reused)"
assert_eq 10 "$resume13" "TLS 1.3: 10 of 10 sessions resumed (Reused)"
# ferry logs each handshake with its worker (log_level debug): in each round a full handshake
# is followed by the resumption of its session. Resumed on the other worker = shared keys.
wait_for 5 _handshakes_logged $((hs0 + 40))
cross=$(grep 'TLS handshake in worker' "$TLS_LOG" | tail -n +$((hs0 + 1)) | \
        sed -E 's/.*in worker ([0-9]+): (full|resumed).*/\1 \2/' | \
        awk 'NR % 2 == 1 { w = $1; next } $2 == "resumed" && $1 != w { n++ } END { print n + 0 }')
log "rounds resumed on another worker than the one that issued the session: $cross of 20"
assert_ge "$cross" 1 "a session resumed on a different worker than the one that issued it"
assert_match "$(cat "$WORK/s13.first")" 'HTTP/1.1 200' "TLS 1.3 first connection got its response"

log "handshake_timeout=1s"
out=$($RAW "127.0.0.1:$P" waitclose:6)
st=$(sed -n 's/^\(CLOSED\|RESET\) .*step=\([0-9.]*\)/\2/p' <<<"$out")
if [ -n "$st" ]; then assert_between "$st" 0.9 3.0 "silent TCP client closed after handshake_timeout (s)"
else fail "silent TCP client not closed within 6 s: $out"; fi
out=$($RAW "127.0.0.1:$P" 'send:\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' waitclose:6)
st=$(sed -n 's/^\(CLOSED\|RESET\) .*step=\([0-9.]*\)/\2/p' <<<"$out")
if [ -n "$st" ]; then assert_between "$st" 0.9 3.0 "client stalling inside its ClientHello closed after handshake_timeout (s)"
else fail "stalled ClientHello not closed within 6 s: $out"; fi
# A ClientHello dribbled a byte every 200 ms for 5 s: every read makes progress, and only a
# deadline from the accept (not an idle time per read) closes it on time.
drip=('send:\x16\x03\x01\x02\x00')
for _ in $(seq 25); do drip+=(sleep:200 'send:\x01'); done
out=$($RAW "127.0.0.1:$P" "${drip[@]}" waitclose:3)
t=$(sed -n 's/^\(CLOSED\|RESET\|SENDFAIL\) .*t=\([0-9.]*\).*/\2/p' <<<"$out" | head -1)
if [ -n "$t" ]; then assert_between "$t" 0.9 3.0 "client dribbling its ClientHello closed at handshake_timeout from the accept (s)"
else fail "dribbling ClientHello not closed: $out"; fi

log "plain HTTP to the TLS port"
out=$($RAW --timeout 3 "127.0.0.1:$P" 'send:GET / HTTP/1.1\r\nHost: a\r\n\r\n' waitclose:5)
assert_match "$out" '^(CLOSED|RESET|EOF)' "plain HTTP on a TLS port: connection closed"
assert_no_match "$out" '^RESP 200' "plain HTTP on a TLS port: not served"
alive "$FERRY_PID" && pass "ferry alive" || fail "ferry died"
out=$(curl -sS --max-time 10 --cacert "$C/ca.crt" -w ' %{http_version}' "https://127.0.0.1:$P/")
assert_eq "hello 2" "$out" "TLS still served afterwards"

log "TLS 1.3 suites: AES-128-GCM unless the client wants ChaCha20 or the config orders them"
# s_client offers OpenSSL's order (AES-256-GCM-SHA384 first)
assert_match "$(sc -tls1_3)" '^New, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256$' "default order: AES-128-GCM (client offers AES-256 first)"
out=$(sc -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256)
assert_match "$out" '^New, TLSv1.3, Cipher is TLS_CHACHA20_POLY1305_SHA256$' "client that lists ChaCha20 first gets it"
out=$(sc -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256)
assert_match "$out" '^New, TLSv1.2, Cipher is ECDHE-ECDSA-CHACHA20-POLY1305$' "TLS 1.2: the same for ChaCha20 first"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$P13" -tls1_3 </dev/null 2>&1)
assert_match "$out" '^New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384$' "ciphersuites configured: the configured order wins"

log "min_version TLSv1.3"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$P13" -tls1_2 </dev/null 2>&1); rc=$?
assert_ne 0 "$rc" "s_client -tls1_2 against a min_version TLSv1.3 listener exits non-zero"
assert_match "$out" 'Cipher is \(NONE\)' "TLS 1.2 client: no cipher negotiated"
assert_match "$out" 'alert protocol version|no protocols available|wrong version|handshake failure' "TLS 1.2 handshake fails with a version alert"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$P13" -tls1_3 </dev/null 2>&1)
assert_match "$out" '^New, TLSv1.3, Cipher is' "TLS 1.3 accepted"
assert_eq 000 "$(http_status "https://127.0.0.1:$P13/" --cacert "$C/ca.crt" --tls-max 1.2)" "curl limited to TLS 1.2: refused"
assert_eq 200 "$(http_status "https://127.0.0.1:$P13/" --cacert "$C/ca.crt")" "curl with TLS 1.3: served"
for pid in "${FERRY_PIDS[@]}"; do alive "$pid" || fail "ferry $pid died"; done
log "Connection: close over TLS: close_notify and FIN at once, no wait for the linger timer"
cat >"$WORK/tlsclose.py" <<'PY'
import socket, ssl, sys, time
port = int(sys.argv[1])
ctx = ssl.create_default_context(cafile=sys.argv[2])
t0 = time.monotonic()
with socket.create_connection(("127.0.0.1", port)) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ssl.SSLEOFError:
                print("EOF-without-close_notify"); chunk = b""
            if not chunk:
                break
            data += chunk
print(data.split(b"\r\n", 1)[0].decode(), int((time.monotonic() - t0) * 1000))
PY
out=$($PY "$WORK/tlsclose.py" "$P" "$C/ca.crt" 2>&1)
log "HTTP/1.0 over TLS: $out"
assert_match "$out" "^HTTP/1.[01] 200 " "HTTP/1.0 over TLS answered"
assert_no_match "$out" "EOF-without-close_notify" "ferry sent close_notify"
ms=$(echo "$out" | awk '{print $NF}')
assert_le "${ms:-99999}" 1000 "the client saw the end of the stream at once (ms; the linger timer is 2 s)"
finish
