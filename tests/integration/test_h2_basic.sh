#!/bin/bash
# HTTP/2 towards clients: h2c by prior knowledge and by Upgrade, h2 over TLS by ALPN (and
# HTTP/1.1 over TLS when asked); what reaches the HTTP/1.1 backend (Host from :authority,
# X-Forwarded-Proto, h2 cookie fields joined into one Cookie); response trailers relayed as an
# h2 trailer HEADERS frame; streams multiplexed; 50 MB bodies both ways, checksummed.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/h2c.yaml" --port "$P" --backend "$B" --access-log "$WORK/access.log"
start_ferry "$WORK/h2c.yaml" "$P" || finish
PT=$(pick_port)
make_config "$WORK/tls.yaml" --port "$PT" --backend "$B" --tls-cert "$C/localhost.crt:$C/localhost.key"
start_ferry "$WORK/tls.yaml" "$PT" || finish
PN=$(pick_port)
make_config "$WORK/noh2.yaml" --port "$PN" --backend "$B" --listener http2=false
start_ferry "$WORK/noh2.yaml" "$PN" || finish
H=http://127.0.0.1:$P
S=https://127.0.0.1:$PT
TC=(--cacert "$C/ca.crt")
W='%{http_version} %{http_code}'

# json_body OUTPUT SID — sets j to the stream's body if it is JSON, else to {} (and FAILs).
json_body() {
    j=$(h2_body "$1" "$2")
    if ! printf '%s' "$j" | $PY -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null; then
        fail "stream $2 body is not JSON: $(printf '%s' "$j" | head -c 200)"; j='{}'
    fi
}

log "protocol selection"
out=$("${CURL[@]}" --http2-prior-knowledge -w " $W" "$H/")
assert_eq "hello 2 200" "$out" "h2c prior knowledge: body, HTTP/2, 200"
out=$("${CURL[@]}" --http2 -v -w " $W" "$H/" 2>"$WORK/upgrade.err")
assert_eq "hello 2 200" "$out" "h2c Upgrade: body, HTTP/2, 200"
assert_match "$(cat "$WORK/upgrade.err")" '^< HTTP/1.1 101' "h2c Upgrade answered 101 Switching Protocols"
out=$("${CURL[@]}" --http2 -X POST --data-binary 'upgrade-body' -w " $W" "$H/echo")
assert_match "$out" '^upgrade-body (1.1|2) 200$' "POST with a body and Upgrade: h2c is answered (h1 or h2)"
out=$("${CURL[@]}" --http2 "${TC[@]}" -w " $W" "$S/")
assert_eq "hello 2 200" "$out" "TLS with ALPN h2 (certificate verified against the test CA)"
out=$("${CURL[@]}" --http1.1 "${TC[@]}" -w " $W" "$S/")
assert_eq "hello 1.1 200" "$out" "TLS with --http1.1: HTTP/1.1"
out=$("${CURL[@]}" --http2 "${TC[@]}" --resolve "localhost:$PT:127.0.0.1" -w " $W" "https://localhost:$PT/")
assert_eq "hello 2 200" "$out" "TLS by name 'localhost' verifies"
out=$("${CURL[@]}" --http2 -w " $W" "http://127.0.0.1:$PN/")
assert_eq "hello 1.1 200" "$out" "http2: false: Upgrade ignored, HTTP/1.1"
out=$($H2PEER --timeout 3 "127.0.0.1:$PN" get:/ wait waitclose:3)
assert_no_match "$out" '^RESP 1 200' "http2: false: a prior-knowledge h2 client is not served h2"
NOH2_PID=$FERRY_PID
alive "$NOH2_PID" && pass "http2: false ferry alive after an h2 preface" || fail "http2: false ferry died"

log "request headers at the backend"
out=$($H2PEER --body --authority example.test:8080 "127.0.0.1:$P" hdr:x-keep:yes get:/headers wait)
assert_match "$out" '^RESP 1 200' "h2c GET /headers"
json_body "$out" 1
assert_eq "example.test:8080" "$(json_get "$j" 'j["host"]')" "Host = :authority"
assert_eq "http" "$(json_get "$j" '",".join(j["headers"]["X-Forwarded-Proto"])')" "X-Forwarded-Proto http over h2c"
assert_eq "127.0.0.1" "$(json_get "$j" '",".join(j["headers"]["X-Forwarded-For"])')" "X-Forwarded-For added"
assert_eq "yes" "$(json_get "$j" '",".join(j["headers"]["X-Keep"])')" "end-to-end header kept"
assert_eq "HTTP/1.1" "$(json_get "$j" 'j["proto"]')" "backend spoken to in HTTP/1.1"
assert_eq "GET" "$(json_get "$j" 'j["method"]')" "method"
assert_eq "/headers" "$(json_get "$j" 'j["uri"]')" "request target = :path"
out=$($H2PEER --body "127.0.0.1:$P" hdr:cookie:a=1 hdr:cookie:b=2 get:/headers wait)
assert_match "$out" '^RESP 1 200' "h2c GET /headers with two cookie fields"
json_body "$out" 1
assert_eq "a=1; b=2" "$(json_get "$j" '"|".join(j["headers"]["Cookie"])')" "two h2 cookie fields joined into one Cookie"
out=$($H2PEER --body "127.0.0.1:$P" hdr:x-forwarded-for:10.1.2.3 get:/headers wait)
json_body "$out" 1
assert_match "$(json_get "$j" '",".join(j["headers"]["X-Forwarded-For"])')" '^10\.1\.2\.3, ?127\.0\.0\.1$' "client X-Forwarded-For extended"
out=$($H2PEER --body "127.0.0.1:$P" hdr:cookie:a=1 hdr:x-forwarded-for:10.1.2.3 hdr:cookie:b=2 hdr:x-after:z get:/headers wait)
assert_match "$out" '^RESP 1 200' "h2c GET /headers with cookies around X-Forwarded-For"
json_body "$out" 1
assert_eq "a=1; b=2" "$(json_get "$j" '"|".join(j["headers"]["Cookie"])')" "cookies joined (with X-Forwarded-For between them)"
assert_match "$(json_get "$j" '",".join(j["headers"]["X-Forwarded-For"])')" '^10\.1\.2\.3, ?127\.0\.0\.1$' "X-Forwarded-For extended (with cookies around it)"
assert_eq "z" "$(json_get "$j" '",".join(j["headers"]["X-After"])')" "field after the cookies intact"
out=$($H2PEER --tls --body --authority "localhost:$PT" "127.0.0.1:$PT" get:/headers wait)
assert_match "$out" '^ALPN h2$' "python client negotiated h2"
json_body "$out" 1
assert_eq "localhost:$PT" "$(json_get "$j" 'j["host"]')" "Host = :authority over TLS"
assert_eq "https" "$(json_get "$j" '",".join(j["headers"]["X-Forwarded-Proto"])')" "X-Forwarded-Proto https over TLS"
# A Host field alongside :authority: :authority wins (RFC 9113 8.3.1).
out=$($H2PEER --body --authority auth.test "127.0.0.1:$P" hdr:host:other.test get:/headers wait)
json_body "$out" 1
assert_eq "auth.test" "$(json_get "$j" 'j["host"]')" ":authority preferred over a host field"
out=$("${CURL[@]}" --http2-prior-knowledge -X POST --data-binary 'abcdefgh' "$H/headers")
assert_eq "8" "$(json_get "$out" 'j["body_len"]')" "POST body length at the backend"
out=$($H2PEER --body "127.0.0.1:$P" post:/headers:3000 wait)
json_body "$out" 1
assert_eq "3000" "$(json_get "$j" 'j["body_len"]')" "h2 POST without content-length: 3000 body bytes reach the backend"

log "response trailers"
for proto in h2c tls; do
    if [ $proto = h2c ]; then out=$($H2PEER --body "127.0.0.1:$P" hdr:te:trailers get:/chunked wait)
    else out=$($H2PEER --tls --body "127.0.0.1:$PT" hdr:te:trailers get:/chunked wait); fi
    assert_match "$out" '^RESP 1 200' "$proto /chunked status"
    assert_eq "$(printf 'chunk-%d\n' 0 1 2 3 4)" "$(h2_body "$out" 1)" "$proto /chunked body"
    assert_match "$out" '^T 1 x-trailer-one: one$' "$proto trailer x-trailer-one"
    assert_match "$out" '^T 1 x-trailer-sum: 40$' "$proto trailer x-trailer-sum"
    assert_no_match "$out" '^H 1 (transfer-encoding|connection|keep-alive):' "$proto no connection-specific response fields"
done
out=$(timeout 10 nghttp -nv "$H/chunked" 2>&1)
assert_match "$out" 'x-trailer-sum: 40' "nghttp sees the trailer too"

log "multiplexing: 10 concurrent /sleep?ms=600 on one connection"
steps=(); for i in $(seq 1 10); do steps+=("get:/sleep?ms=600"); done
t0=$(now_ms)
out=$($H2PEER "127.0.0.1:$P" "${steps[@]}" waitall)
el=$(( $(now_ms) - t0 ))
assert_eq 10 "$(grep -c '^RESP [0-9]* 200' <<<"$out")" "10 concurrent streams answered 200"
assert_le "$el" 2500 "streams ran concurrently (ms for 10 x 600 ms)"

log "large bodies (50 MB) over h2c and h2"
SZ=$((50 * 1024 * 1024))
head -c $SZ /dev/urandom >"$WORK/up.bin"
want="$SZ $(sha256sum "$WORK/up.bin" | cut -d' ' -f1)"
out=$(curl -sS --max-time 60 --http2-prior-knowledge --data-binary @"$WORK/up.bin" "$H/sha256")
assert_eq "$want" "$out" "50 MB upload over h2c intact"
out=$(curl -sS --max-time 60 --http2 "${TC[@]}" --data-binary @"$WORK/up.bin" "$S/sha256")
assert_eq "$want" "$out" "50 MB upload over h2/TLS intact"
rm -f "$WORK/up.bin"
direct=$(curl -sS --max-time 60 "http://$B/big?bytes=$SZ" | sha256sum | cut -d' ' -f1)
out=$(curl -sS --max-time 60 --http2-prior-knowledge -w '%{http_version} %{http_code} %{size_download}' -o "$WORK/down.bin" "$H/big?bytes=$SZ")
assert_eq "2 200 $SZ" "$out" "50 MB download over h2c: status and size"
assert_eq "$direct" "$(sha256sum <"$WORK/down.bin" | cut -d' ' -f1)" "50 MB download over h2c: checksum"
out=$(curl -sS --max-time 60 --http2 "${TC[@]}" "$S/big?bytes=$SZ&chunked=1" | sha256sum | cut -d' ' -f1)
assert_eq "$direct" "$out" "50 MB chunked download over h2/TLS: checksum"
rm -f "$WORK/down.bin"

log "access log"
if wait_grep "$WORK/access.log" '"GET /headers HTTP/2(\.0)?"' 5; then
    pass "access log records h2 requests as HTTP/2"
else
    fail "no access log line with \"GET /headers HTTP/2\": $(tail -n 2 "$WORK/access.log" 2>/dev/null)"
fi
for pid in "${FERRY_PIDS[@]}"; do alive "$pid" || fail "ferry $pid died"; done
log "request trailers: an h2 client's trailers reach the HTTP/1.1 backend in its chunked body"
cat >"$WORK/reqtrailers.py" <<'PY'
import json, socket, sys
import h2.connection, h2.events
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
c = h2.connection.H2Connection()
c.initiate_connection()
c.send_headers(1, [(":method", "POST"), (":path", "/headers"), (":scheme", "http"), (":authority", "t")])
c.send_data(1, b"hello")
c.send_headers(1, [("x-checksum", "abc123")], end_stream=True)
s.sendall(c.data_to_send())
body, done = b"", False
while not done:
    d = s.recv(65536)
    if not d:
        break
    for e in c.receive_data(d):
        if isinstance(e, h2.events.DataReceived):
            body += e.data
            c.acknowledge_received_data(e.flow_controlled_length, 1)
        elif isinstance(e, h2.events.StreamEnded):
            done = True
    s.sendall(c.data_to_send())
j = json.loads(body)
print(j["trailers"]["X-Checksum"][0], j["transfer_encoding"][0], j["body_len"])
PY
assert_eq "abc123 chunked 5" "$(/usr/bin/python3 "$WORK/reqtrailers.py" "$P" 2>&1)" "request trailer forwarded in a chunked body"
log "h2c Upgrade, then more streams one at a time (h2_max_concurrent_streams=1: stream 1 must be counted and released)"
P1=$(pick_port)
make_config "$WORK/one.yaml" --port "$P1" --backend "$B" --listener h2_max_concurrent_streams=1
start_ferry "$WORK/one.yaml" "$P1" || finish
assert_eq "1:200 3:200 5:200" "$(timeout 10 /usr/bin/python3 "$IT_DIR/h2c_upgrade_seq.py" "$P1" 2>&1)" "streams after the upgraded one are served"

log "Upgrade: h2c with an undecodable HTTP2-Settings is served over HTTP/1.1, not dropped"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{http_version}' -H 'Connection: Upgrade, HTTP2-Settings' \
      -H 'Upgrade: h2c' -H 'HTTP2-Settings: !!!' "http://127.0.0.1:$P/")
assert_eq "200 1.1" "$out" "bad HTTP2-Settings: no upgrade, HTTP/1.1 answer"
finish
