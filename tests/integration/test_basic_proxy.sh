#!/bin/bash
# Basic proxying: methods, bodies in both directions (50 MB, checksummed), chunked request
# and response bodies (with trailers), request header rewriting (Host kept, X-Forwarded-*
# added, hop-by-hop removed), Expect: 100-continue, pipelining, HTTP/1.0, access log format,
# TCP_NODELAY on both sides.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --access-log "$WORK/access.log"
start_ferry "$WORK/ferry.yaml" "$P" || finish
F=127.0.0.1:$P
URL=http://$F

log "GET / HEAD / POST"
out=$("${CURL[@]}" -i "$URL/")
assert_match "$out" '^HTTP/1.1 200' "GET / status"
assert_eq "hello" "$(printf '%s' "$out" | tail -c 5)" "GET / body"
assert_contains "$out" "X-Backend-Id: b" "backend response header relayed"

out=$("${CURL[@]}" -s -o /dev/null -w '%{http_code} %{size_download}' -I "$URL/")
assert_eq "200 0" "$out" "HEAD / status and no body"
# HEAD then GET on one connection: no body bytes may follow the HEAD response.
out=$($RAW "$F" 'send:HEAD / HTTP/1.1\r\nHost: a\r\n\r\n' read:HEAD 'send:GET / HTTP/1.1\r\nHost: a\r\n\r\n' read)
assert_eq "2" "$(grep -c '^RESP 200' <<<"$out")" "HEAD then GET on one connection: two 200s"
assert_match "$out" 'BODY 5 ' "GET after HEAD has the 5-byte body"

out=$("${CURL[@]}" -i -X POST --data-binary 'posted-data' "$URL/echo")
assert_contains "$out" "X-Echo-Method: POST" "POST reaches backend as POST"
assert_eq "posted-data" "$(printf '%s' "$out" | tail -c 11)" "POST body echoed"
out=$("${CURL[@]}" -i -X PUT --data-binary 'put-data' "$URL/echo")
assert_contains "$out" "X-Echo-Method: PUT" "PUT reaches backend as PUT"
out=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X DELETE "$URL/status/204")
assert_eq "204" "$out" "DELETE /status/204"
out=$(http_status "$URL/status/404")
assert_eq "404" "$out" "backend 404 relayed"

log "request headers at the backend"
hdrs=$("${CURL[@]}" -H 'Host: example.test:8080' "$URL/headers")
assert_eq "example.test:8080" "$(json_get "$hdrs" 'j["host"]')" "Host preserved"
assert_eq "127.0.0.1" "$(json_get "$hdrs" '",".join(j["headers"]["X-Forwarded-For"])')" "X-Forwarded-For added"
assert_eq "http" "$(json_get "$hdrs" '",".join(j["headers"]["X-Forwarded-Proto"])')" "X-Forwarded-Proto added"
assert_eq "GET" "$(json_get "$hdrs" 'j["method"]')" "method"
assert_eq "HTTP/1.1" "$(json_get "$hdrs" 'j["proto"]')" "upstream protocol HTTP/1.1"

hdrs=$("${CURL[@]}" -H 'X-Forwarded-For: 10.1.2.3' "$URL/headers")
xff=$(json_get "$hdrs" '",".join(j["headers"]["X-Forwarded-For"])')
assert_match "$xff" '(^|[ ,])127\.0\.0\.1$' "client X-Forwarded-For extended with 127.0.0.1 (got '$xff')"

# Two X-Forwarded-For fields amid others: one joined line, and the fields after it intact.
req='GET /headers HTTP/1.1\r\nHost: xff.test\r\nX-Forwarded-For: 10.0.0.1\r\nX-After-One: 1\r\nX-Forwarded-For: 10.0.0.2\r\nX-After-Two: 2\r\nConnection: close\r\n\r\n'
body=$($RAW --body "$F" "send:$req" read | sed -n "s/^BODYTEXT b'\(.*\)\\\\n'$/\1/p")
assert_eq "10.0.0.1, 10.0.0.2, 127.0.0.1" "$(json_get "$body" '",".join(j["headers"]["X-Forwarded-For"])')" "X-Forwarded-For fields joined, client appended"
assert_eq "1 2" "$(json_get "$body" 'j["headers"]["X-After-One"][0] + " " + j["headers"]["X-After-Two"][0]')" "fields around X-Forwarded-For intact"

req='GET /headers HTTP/1.1\r\nHost: hop.test\r\nConnection: foo, keep-alive\r\nFoo: bar\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic eDp5\r\nX-Keep: yes\r\n\r\n'
out=$($RAW --body "$F" "send:$req" read)
body=$(sed -n "s/^BODYTEXT b'\(.*\)\\\\n'$/\1/p" <<<"$out")
assert_ne "" "$body" "got /headers JSON for the hop-by-hop request"
names=$(json_get "$body" '" ".join(sorted(k.lower() for k in j["headers"]))')
log "headers at backend: $names"
for h in foo keep-alive proxy-connection te upgrade; do
    assert_no_match " $names " " $h " "hop-by-hop header '$h' removed"
done
conn_hdr=$(json_get "$body" '",".join(j["headers"].get("Connection", []))')
assert_not_contains "$conn_hdr" "foo" "Connection header does not carry 'foo' to the backend"
assert_contains " $names " " x-keep " "end-to-end header X-Keep kept"
assert_eq "hop.test" "$(json_get "$body" 'j["host"]')" "Host preserved (raw request)"

log "large bodies (50 MB), checksummed"
head -c $((50 * 1024 * 1024)) /dev/urandom >"$WORK/up.bin"
want="$((50 * 1024 * 1024)) $(sha256sum "$WORK/up.bin" | cut -d' ' -f1)"
out=$(curl -sS --max-time 60 -X POST --data-binary @"$WORK/up.bin" "$URL/sha256")
assert_eq "$want" "$out" "50 MB upload (Content-Length) arrives intact"
out=$(curl -sS --max-time 60 -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/up.bin" "$URL/sha256")
assert_eq "$want" "$out" "50 MB upload (chunked request body) arrives intact"
hdrs=$(curl -sS --max-time 10 -X POST -H 'Transfer-Encoding: chunked' --data-binary 'abcdefgh' "$URL/headers")
assert_eq "8" "$(json_get "$hdrs" 'j["body_len"]')" "chunked request body length at backend"

direct=$(curl -sS --max-time 60 "http://$B/big?bytes=52428800" | sha256sum | cut -d' ' -f1)
out=$(curl -sS --max-time 60 -w '%{http_code} %{size_download}' -o "$WORK/down.bin" "$URL/big?bytes=52428800")
assert_eq "200 52428800" "$out" "50 MB download status and size"
assert_eq "$direct" "$(sha256sum <"$WORK/down.bin" | cut -d' ' -f1)" "50 MB download checksum"
rm -f "$WORK/down.bin"
out=$(curl -sS --max-time 60 "$URL/big?bytes=52428800&chunked=1" | sha256sum | cut -d' ' -f1)
assert_eq "$direct" "$out" "50 MB chunked download checksum"
rm -f "$WORK/up.bin"

log "chunked response with trailers"
out=$($RAW --body "$F" 'send:GET /chunked HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n' read)
assert_match "$out" '^RESP 200' "GET /chunked status"
assert_contains "$out" "BODYTEXT b'chunk-0\\nchunk-1\\nchunk-2\\nchunk-3\\nchunk-4\\n'" "chunked body relayed"
assert_match "$out" '^T X-Trailer-One: one$' "trailer X-Trailer-One relayed"
assert_match "$out" '^T X-Trailer-Sum: 40$' "trailer X-Trailer-Sum relayed"

log "Expect: 100-continue"
out=$($RAW --timeout 3 --body "$F" 'send:POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n' read:1xx send:hello read)
assert_match "$out" '^RESP 100' "100 Continue before the body was sent"
assert_match "$out" "^BODYTEXT b'hello'" "body after 100-continue echoed"
start=$(now_ms)
out=$(curl -sS --max-time 10 -H 'Expect: 100-continue' --data-binary 'expect-body' "$URL/echo")
el=$(( $(now_ms) - start ))
assert_eq "expect-body" "$out" "curl with Expect: 100-continue"
assert_le "$el" 900 "curl did not wait for its 1 s Expect timeout (ms)"

log "pipelining"
out=$($RAW --body "$F" 'send:GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /status/203 HTTP/1.1\r\nHost: a\r\n\r\n' read read read)
assert_eq "201 200 203" "$(grep '^RESP' <<<"$out" | awk '{print $2}' | xargs)" "3 pipelined responses in order"
assert_match "$out" "^BODYTEXT b'abc'" "pipelined POST body"

reqs=""
for i in $(seq 1 100); do reqs="${reqs}GET /headers?i=$i HTTP/1.1\r\nHost: a\r\n\r\n"; done
reads=(); for i in $(seq 1 100); do reads+=(read); done
out=$($RAW --body "$F" "send:$reqs" "${reads[@]}")
order=$(grep -oE '"uri":"/headers\?i=[0-9]+"' <<<"$out" | grep -oE '[0-9]+' | xargs)
assert_eq "$(seq 1 100 | xargs)" "$order" "100 pipelined requests in one write answered in order"

log "HTTP/1.0"
out=$($RAW --body "$F" 'send:GET / HTTP/1.0\r\nHost: a\r\n\r\n' read waitclose:3)
assert_match "$out" '^RESP 200' "HTTP/1.0 GET status"
assert_match "$out" "^BODYTEXT b'hello'" "HTTP/1.0 GET body"
assert_match "$out" '^CLOSED' "HTTP/1.0 without keep-alive: connection closed"
out=$($RAW --body "$F" 'send:GET /chunked HTTP/1.0\r\nHost: a\r\n\r\n' read waitclose:3)
assert_no_match "$out" '^H Transfer-Encoding: chunked' "no chunked encoding to an HTTP/1.0 client"
assert_contains "$out" "BODYTEXT b'chunk-0\\nchunk-1" "HTTP/1.0 client gets the /chunked body"
out=$($RAW "$F" 'send:GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n' read 'send:GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n' read)
assert_eq "2" "$(grep -c '^RESP 200' <<<"$out")" "HTTP/1.0 keep-alive: two responses on one connection"
assert_match "$out" '^H Connection: keep-alive' "HTTP/1.0 keep-alive response says Connection: keep-alive"
# An HTTP/1.0 request may lack Host; the HTTP/1.1 request to the backend must still have one.
out=$($RAW "$F" 'send:GET / HTTP/1.0\r\n\r\n' read)
assert_match "$out" '^RESP 200' "HTTP/1.0 request without Host is proxied (ferry supplies a Host)"

log "access log"
"${CURL[@]}" -o /dev/null -A 'agent-x' -e 'http://ref/' "$URL/status/202?marker=1"
if wait_grep "$WORK/access.log" 'marker=1' 5; then
    line=$(grep 'marker=1' "$WORK/access.log" | tail -n1)
    log "line: $line"
    assert_match "$line" '^127\.0\.0\.1 - - \[[^]]+\] "GET /status/202\?marker=1 HTTP/1\.1" 202 [0-9]+ "http://ref/" "agent-x"' "combined format prefix"
    assert_match "$line" " upstream=$B ustatus=202 reused=[01] idle_ms=[0-9]+ ureqs=[0-9]+ retries=[0-9]+ retry_reason=[^ ]+ connect_ms=[0-9]+ response_ms=[0-9]+( [a-z_]+=[^ ]*)*\$" "extra upstream fields (further key=value fields tolerated)"
else
    fail "access log line for marker=1 not written within 5s"
fi
log "TCP_NODELAY on client and upstream sockets (read from ferry's own descriptors)"
# A held keep-alive connection; ferry's sockets are read with pidfd_getfd while it is open.
out=$($PY - "$P" "$FERRY_PID" "$IT_DIR/sockopts.py" <<'PY'
import socket, subprocess, sys
port, pid, tool = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = socket.create_connection(("127.0.0.1", port), timeout=10)
c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
data = b""
while not data.endswith(b"hello"):
    chunk = c.recv(65536)
    if not chunk:
        sys.exit(f"connection closed before the response ended: {data!r}")
    data += chunk
r = subprocess.run([sys.executable, tool, pid], capture_output=True, text=True, timeout=20)
print(f"client 127.0.0.1:{c.getsockname()[1]} rc={r.returncode}")
print(r.stdout, end="")
print(r.stderr, end="", file=sys.stderr)
c.close()
PY
)
printf '%s\n' "$out" | sed 's/^/#   /'
if [[ "$out" == *"rc=2"* ]]; then
    log "skipped: pidfd_getfd is not available here"
else
    cport=$(sed -n 's/^client 127.0.0.1:\([0-9]*\) .*/\1/p' <<<"$out")
    assert_match "$out" "^LISTEN 127.0.0.1:$P nodelay=1\$" "listening socket has TCP_NODELAY (accepted sockets inherit it)"
    assert_match "$out" "^CONN 127.0.0.1:$P 127.0.0.1:$cport nodelay=1\$" "accepted client connection has TCP_NODELAY"
    assert_match "$out" "^CONN [^ ]+ $B nodelay=1\$" "upstream connection has TCP_NODELAY"
fi

alive "$FERRY_PID" && pass "ferry still running" || fail "ferry died"
finish
