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

log "closing after the client's Connection: close"
# The client asked to close and sends nothing more: ferry closes at once (the FIN follows
# the response) instead of lingering, even while the client keeps its socket open. With
# bytes after the request (pipelined), it lingers: closing then could turn them into an RST.
# Connections on the listener that ferry still holds a descriptor for (a lingering close
# keeps one; a closed one is orphaned or gone). Counting ferry's fds instead would also count
# the upstream connection the request may have opened.
held_conns() { ss -Htnp state connected "sport = :$PB" 2>/dev/null | grep -c "pid=$FERRY_PID," || true; }
_none_held() { [ "$(held_conns)" -eq 0 ]; }
_has_closed() { grep -q '^CLOSED' "$1" 2>/dev/null; }
close_hold() { # OUT REQUEST — reads to ferry's FIN, then holds the socket open 1.5 s
    local out=$1
    $PY -u - "127.0.0.1" "$PB" "$2" >"$out" <<'PY' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(5)
while True:
    try:
        d = s.recv(65536)
    except OSError as e:
        print("ERROR", e)
        sys.exit()
    if not d:
        break
print("CLOSED")
time.sleep(1.5)
s.close()
PY
    _track $!
    wait_for 5 _has_closed "$out"
}
if close_hold "$WORK/cc1.out" 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'; then
    # The client holds its socket 1.5 s; a lingering close would hold ferry's for 2 s.
    if wait_for 1 _none_held; then
        pass "no lingering connection after the response to Connection: close"
    else
        fail "ferry still holds the connection ($(held_conns) held)"
    fi
else
    fail "no close after a Connection: close response ($(cat "$WORK/cc1.out" | head -3))"
fi
if close_hold "$WORK/cc2.out" 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /more HTTP/1.1\r\n'; then
    assert_eq 1 "$(held_conns)" "with bytes after the request, ferry lingers"
else
    fail "no close after a Connection: close response with bytes after it"
fi
finish
