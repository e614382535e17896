#!/bin/bash
# Client-side keep-alive limits: keepalive_requests, keepalive_timeout, keepalive_time,
# keepalive_header_timeout.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR

# Instance A: keepalive_requests=3, keepalive_timeout=1s
PA=$(pick_port)
make_config "$WORK/a.yaml" --port "$PA" --backend "$B" \
    --listener keepalive_requests=3 --listener keepalive_timeout=1s
start_ferry "$WORK/a.yaml" "$PA" || finish
# Instance B: keepalive_time=2s, keepalive_timeout=10s, keepalive_header_timeout=5s
PB=$(pick_port)
make_config "$WORK/b.yaml" --port "$PB" --backend "$B" \
    --listener keepalive_time=2s --listener keepalive_timeout=10s --listener keepalive_header_timeout=5s
start_ferry "$WORK/b.yaml" "$PB" || finish

GET='send:GET / HTTP/1.1\r\nHost: a\r\n\r\n'

log "keepalive_requests=3"
out=$($RAW "127.0.0.1:$PA" "$GET" read "$GET" read "$GET" read waitclose:3)
printf '%s\n' "$out" | grep -E '^(RESP|H Connection|CLOSED|OPEN|EOF|RESET)' | sed 's/^/#   /'
assert_eq 3 "$(grep -c '^RESP 200' <<<"$out")" "three responses on one connection"
# Which responses carried Connection: close? (response index 1..3)
closes=$(awk '/^RESP/{n++} tolower($0) ~ /^h connection: *close/{print n}' <<<"$out" | xargs)
assert_eq "3" "$closes" "only the 3rd response carries Connection: close"
assert_match "$out" '^CLOSED' "ferry closes the connection after the 3rd response"
u="http://127.0.0.1:$PA/"
nc=$("${CURL[@]}" -w '%{num_connects} ' -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u")
assert_eq "1 0 0 1" "$(echo $nc)" "curl: 4 URLs need 2 connections (num_connects per URL)"

log "keepalive_timeout=1s"
out=$($RAW "127.0.0.1:$PA" "$GET" read waitclose:6)
assert_match "$out" '^RESP 200' "request before idling"
assert_no_match "$out" '^H Connection: close' "response does not announce a close"
st=$(sed -n 's/^CLOSED .*step=\([0-9.]*\)/\1/p' <<<"$out")
if [ -n "$st" ]; then
    assert_between "$st" 0.9 3.0 "idle client connection closed after keepalive_timeout (s)"
else
    fail "idle client connection not closed within 6 s: $(tail -n1 <<<"$out")"
fi

log "keepalive_time=2s"
steps=()
for i in $(seq 1 10); do steps+=("$GET" read sleep:400); done
out=$($RAW "127.0.0.1:$PB" "${steps[@]}" waitclose:3)
printf '%s\n' "$out" | grep -E '^(RESP|H Connection|CLOSED|OPEN|EOF|RESET|SENDFAIL)' | sed 's/^/#   /'
# t of each response and whether it said Connection: close
table=$(awk '/^RESP/{if(n)print t, c; n++; t=$3; sub("t=","",t); c=0}
             tolower($0) ~ /^h connection: *close/{c=1} END{if(n)print t, c}' <<<"$out")
first_close=$(awk '$2==1{print $1; exit}' <<<"$table")
early_close=$(awk '$2==1 && $1 < 1.9 {print $1}' <<<"$table" | head -n1)
nresp=$(grep -c '^RESP 200' <<<"$out")
assert_eq "" "$early_close" "no Connection: close before the 2 s mark"
if [ -n "$first_close" ]; then
    assert_between "$first_close" 1.9 3.0 "first response with Connection: close comes after the 2 s mark (s)"
else
    fail "no response carried Connection: close within 4 s of keepalive_time=2s"
fi
assert_between "$nresp" 5 8 "number of responses on the connection before it closed"
assert_match "$out" '^CLOSED' "connection closed after keepalive_time"
after=$(awk -v f="${first_close:-0}" '$1 > f' <<<"$table" | wc -l)
assert_eq 0 "$after" "no response after the Connection: close one"

log "keepalive_header_timeout=5s"
out=$($RAW "127.0.0.1:$PB" "$GET" read)
assert_match "$out" '^H Keep-Alive: timeout=5(,|$)' "response carries Keep-Alive: timeout=5"
out=$($RAW "127.0.0.1:$PA" "$GET" read)
assert_no_match "$out" '^H Keep-Alive:' "no Keep-Alive header without keepalive_header_timeout"
finish
