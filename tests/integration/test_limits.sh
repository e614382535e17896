#!/bin/bash
# Client-side limits: client_max_body_size (413, Content-Length and chunked), request head
# limits (431 / 414), client_header_timeout (slow request head is cut off), and that none of
# the rejected requests reaches the backend.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" \
    --listener client_max_body_size=1k --listener client_header_timeout=1s \
    --listener max_header_size=8k --listener max_request_line=4k
start_ferry "$WORK/ferry.yaml" "$P" || finish
URL=http://127.0.0.1:$P
F=127.0.0.1:$P
reqs0=$(backend_stat "$B" requests)

log "client_max_body_size=1k"
head -c 1000 /dev/zero >"$WORK/small.bin"
head -c 5000 /dev/zero >"$WORK/big.bin"
assert_eq 200 "$(http_status "$URL/sha256" --data-binary @"$WORK/small.bin")" "1000-byte body accepted"
reqs0=$((reqs0 + 1))
assert_eq 413 "$(http_status "$URL/sha256" --data-binary @"$WORK/big.bin")" "5000-byte body (Content-Length): 413"
assert_eq "$reqs0" "$(backend_stat "$B" requests)" "the 413 (Content-Length) request did not reach the backend"
assert_eq 413 "$(http_status "$URL/sha256" -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big.bin")" \
    "5000-byte chunked body: 413"
# A streamed chunked body may already have had its head forwarded: do not count it.
reqs0=$(backend_stat "$B" requests)

log "request head limits"
long=$(head -c 6000 /dev/zero | tr '\0' a)
assert_eq 414 "$(http_status "$URL/?q=$long")" "6000-byte request line: 414"
assert_eq 431 "$(http_status "$URL/" -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' b)")" "9000-byte header: 431"

log "client_header_timeout=1s (slow request head)"
out=$($RAW --timeout 6 "$F" 'send:GET / HTTP/1.1\r\nHost: a\r\n' readall:6)
printf '%s\n' "$out" | grep -E '^(RESP|CLOSED|OPEN|EOF|RESET)' | sed 's/^/#   /'
assert_match "$out" '^(CLOSED|RESET|EOF)' "incomplete request head: connection closed"
assert_no_match "$out" '^RESP 200' "no 200 for an incomplete head"
st=$(grep -oE '^(CLOSED|RESET|EOF) t=[0-9.]+' <<<"$out" | sed 's/.*t=//')
assert_between "${st:-99}" 0.9 3.5 "closed after about client_header_timeout (s)"

reqs1=$(backend_stat "$B" requests)
assert_eq "$reqs0" "$reqs1" "no rejected request reached the backend"
assert_eq 200 "$(http_status "$URL/")" "ferry keeps serving"
finish
