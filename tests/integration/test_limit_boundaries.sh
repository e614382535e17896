#!/bin/bash
# Every documented client-side limit at its boundary and one past it (ferry.yaml(5), LISTENERS):
#  - max_header_size: a head (request line through the empty line, CRLFs included) of exactly
#    the limit is served; one byte more is 431.
#  - max_request_line: a request line (without its CRLF) of exactly the limit is served; one
#    byte more is 414.
#  - max_headers: N fields (Host included) served, N+1 is 431.
#  - client_max_body_size: exactly N bytes served, N+1 is 413, with Content-Length and chunked
#    (one chunk, or N bytes then one more chunk), over HTTP/1.1 and HTTP/2 (with and without
#    content-length); nothing over the limit reaches the backend.
#  - h2_max_header_list_size (names + values + 32 per field, pseudo-headers included): at the
#    limit served, one byte more is 431; h2_max_concurrent_streams: N streams at once served,
#    stream N+1 refused with RST_STREAM REFUSED_STREAM and the connection stays up.
#  - max_connections (per worker; workers: 1): N held connections are served, the N+1th is not
#    served until one of them closes.
#  - client_header_timeout, client_body_timeout, keepalive_timeout, send_timeout (1 s): a
#    peer that stays just inside is served; one that goes past is cut off about 1 s later.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR

# --- instance L: size and count limits (HTTP/1.1 and HTTP/2)
PL=$(pick_port)
make_config "$WORK/l.yaml" --port "$PL" --backend "$B" \
    --listener max_header_size=2k --listener max_request_line=512 --listener max_headers=10 \
    --listener client_max_body_size=1k --listener h2_max_header_list_size=1k \
    --listener h2_max_concurrent_streams=3
start_ferry "$WORK/l.yaml" "$PL" || finish
L=127.0.0.1:$PL

# status_of BYTES-FILE — status line code of ferry's answer to the raw bytes of FILE.
status_of() {
    $RAW --timeout 5 "$L" "sendfile:$1" read | sed -n 's/^RESP \([0-9]*\) .*/\1/p' | head -n1
}
# mkreq FILE KIND N — writes a request whose measured part is exactly N bytes:
#   head: the whole head; line: the request line without CRLF; fields: N header fields;
#   cl / chunked / chunked2: a POST /sha256 body of N bytes (chunked2: N-1 bytes, then 1).
mkreq() {
    $PY - "$@" <<'PY'
import sys
f, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "head":
    base = b"GET /?head HTTP/1.1\r\nHost: a\r\nX-Pad: "
    d = base + b"p" * (n - len(base) - 4) + b"\r\n\r\n"
elif kind == "line":
    d = b"GET /?" + b"l" * (n - len(b"GET /? HTTP/1.1")) + b" HTTP/1.1"
    assert len(d) == n
    d += b"\r\nHost: a\r\n\r\n"
elif kind == "fields":
    d = b"GET /?fields HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(n - 1)) + b"\r\n"
elif kind == "cl":
    d = b"POST /sha256 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % n + b"b" * n
elif kind == "chunked":
    d = b"POST /sha256 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % n + b"b" * n + b"\r\n0\r\n\r\n"
elif kind == "chunked2":
    d = (b"POST /sha256 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (n - 1) +
         b"b" * (n - 1) + b"\r\n1\r\nb\r\n0\r\n\r\n")
if kind == "head":
    assert len(d) == n, len(d)
open(f, "wb").write(d)
PY
}
# boundary NAME KIND AT OK-STATUS OVER-STATUS — AT bytes/fields served, AT+1 refused.
boundary() {
    local name=$1 kind=$2 at=$3 ok=$4 over=$5 r0 r1 out
    mkreq "$WORK/at.bin" "$kind" "$at"
    mkreq "$WORK/over.bin" "$kind" $((at + 1))
    r0=$(backend_stat "$B" requests)
    out=$($RAW --timeout 5 --body "$L" "sendfile:$WORK/at.bin" read)
    assert_eq "$ok" "$(sed -n 's/^RESP \([0-9]*\) .*/\1/p' <<<"$out" | head -n1)" "$name: exactly $at: served"
    case $kind in cl|chunked*) assert_match "$out" "^BODYTEXT b'$at " "$name: the backend got all $at bytes" ;; esac
    r1=$(backend_stat "$B" requests)
    assert_eq 1 "$((r1 - r0))" "$name: exactly $at: reached the backend once"
    assert_eq "$over" "$(status_of "$WORK/over.bin")" "$name: $((at + 1)): $over"
    # (A chunked request's head may be forwarded before its body goes over the limit, as its
    # bytes arrive: the backend's request count says nothing then.)
    if [ "$kind" != chunked ] && [ "$kind" != chunked2 ]; then
        assert_eq "$r1" "$(backend_stat "$B" requests)" "$name: $((at + 1)): did not reach the backend"
    fi
}

log "HTTP/1.1 head and body limits"
boundary "max_header_size=2k" head 2048 200 431
boundary "max_request_line=512" line 512 200 414
boundary "max_headers=10" fields 10 200 431
boundary "client_max_body_size=1k, Content-Length" cl 1024 200 413
boundary "client_max_body_size=1k, one chunk" chunked 1024 200 413
boundary "client_max_body_size=1k, N-1 bytes then one more chunk" chunked2 1024 200 413

log "HTTP/2 limits"
PEER=($H2PEER --timeout 5)
# h2_max_header_list_size counts every field as name + value + 32 octets (RFC 9113 6.5.2),
# pseudo-headers included: :method GET, :scheme http, :authority L, :path /?hl, x-pad.
fixed=$(( (7 + 3 + 32) + (7 + 4 + 32) + (10 + ${#L} + 32) + (5 + 4 + 32) + (5 + 32) ))
pad_at=$(head -c $((1024 - fixed)) /dev/zero | tr '\0' v)
r0=$(backend_stat "$B" requests)
out=$("${PEER[@]}" "$L" "hdr:x-pad:$pad_at" 'get:/?hl' wait "hdr:x-pad:${pad_at}v" 'get:/?hl' wait)
r1=$(backend_stat "$B" requests)
assert_match "$out" '^RESP 1 200' "h2_max_header_list_size=1k: a header list of exactly 1024: served"
assert_match "$out" '^RESP 3 431' "h2_max_header_list_size=1k: 1025: 431"
assert_eq 1 "$((r1 - r0))" "h2_max_header_list_size=1k: only the one at the limit reached the backend"

h2_post() { # WITH-CL N — POST /sha256 of N bytes; prints the h2peer output
    local cl=()
    [ "$1" = 1 ] && cl=("hdr:content-length:$2")
    "${PEER[@]}" --body "$L" "${cl[@]}" "post:/sha256:$2" wait
}
for withcl in 1 0; do
    what=$([ $withcl = 1 ] && echo "with content-length" || echo "without content-length")
    out=$(h2_post $withcl 1024)
    assert_match "$out" '^RESP 1 200' "client_max_body_size=1k over h2, $what: 1024 bytes served"
    assert_match "$out" "^BODYTEXT 1 b'1024 " "client_max_body_size=1k over h2, $what: the backend got all 1024"
    out=$(h2_post $withcl 1025)
    if grep -qE '^(RESP 1 413|RST 1 )' <<<"$out"; then
        pass "client_max_body_size=1k over h2, $what: 1025 bytes refused ($(grep -E '^(RESP 1|RST 1) ' <<<"$out" | head -n1 | awk '{print $1, $3}'))"
    else
        fail "client_max_body_size=1k over h2, $what: 1025 bytes: expected 413 or RST_STREAM, got:"
        grep -E '^(RESP|RST|BODYTEXT)' <<<"$out" | sed 's/^/        | /'
    fi
    assert_no_match "$out" "^BODYTEXT 1 b'1025 " "client_max_body_size=1k over h2, $what: the backend never got 1025 bytes"
done

# h2_max_concurrent_streams=3: 3 slow streams at once, then 4.
steps=(); for i in 1 2 3; do steps+=("get:/sleep?ms=400"); done
out=$("${PEER[@]}" "$L" waitsettings "${steps[@]}" waitall)
assert_eq "1 3 5" "$(grep -E '^RESP [0-9]+ 200' <<<"$out" | awk '{print $2}' | sort -n | xargs)" \
    "h2_max_concurrent_streams=3: 3 concurrent streams all served"
assert_no_match "$out" '^(RST|GOAWAY)' "h2_max_concurrent_streams=3: no stream refused at the limit"
out=$("${PEER[@]}" "$L" waitsettings "${steps[@]}" "get:/sleep?ms=400" waitall get:/ wait)
printf '%s\n' "$out" | grep -E '^(RESP|RST|GOAWAY)' | sed 's/^/#   /'
assert_eq "1 3 5" "$(grep -E '^RESP [0-9]+ 200' <<<"$out" | awk '$2 < 9 {print $2}' | sort -n | xargs)" \
    "h2_max_concurrent_streams=3: with a 4th, the first 3 are served"
assert_match "$out" '^RST 7 REFUSED_STREAM' "h2_max_concurrent_streams=3: the 4th is refused with REFUSED_STREAM (as documented)"
assert_match "$out" '^RESP 9 200' "h2_max_concurrent_streams=3: the connection stays up"
assert_no_match "$out" '^GOAWAY' "h2_max_concurrent_streams=3: no GOAWAY"

log "max_connections=3 (workers: 1)"
PC=$(pick_port)
make_config "$WORK/c.yaml" --port "$PC" --backend "$B" --workers 1 --listener max_connections=3 \
    --listener keepalive_timeout=30s --listener client_header_timeout=30s
start_ferry "$WORK/c.yaml" "$PC" || finish
CLOG=$FERRY_LOG
out=$($PY - "127.0.0.1:$PC" 3 <<'PY'
import socket, sys, time
h, p = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
REQ = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"

def status(s, t):
    s.settimeout(t)
    d = b""
    try:
        while b"\r\n\r\n" not in d:
            x = s.recv(65536)
            if not x:
                return "closed"
            d += x
    except socket.timeout:
        return "none"
    except OSError:
        return "reset"
    return d.split(b" ")[1].decode()

held = []
for i in range(n):
    s = socket.create_connection((h, int(p)), timeout=5)
    s.sendall(REQ)
    print("held%d %s" % (i + 1, status(s, 5)))
    held.append(s)
x = socket.create_connection((h, int(p)), timeout=5)   # the kernel's backlog takes it
x.sendall(REQ)
print("extra_while_full %s" % status(x, 1.5))
held[0].close()
t = time.monotonic()
print("extra_after_close %s %.2f" % (status(x, 5), time.monotonic() - t))
print("held2_again %s" % (held[1].sendall(REQ) or status(held[1], 5)))
PY
)
printf '%s\n' "$out" | sed 's/^/#   /'
assert_eq "200 200 200" "$(grep '^held[0-9] ' <<<"$out" | awk '{print $2}' | xargs)" "3 connections (the limit) all served"
assert_eq none "$(awk '/^extra_while_full/{print $2}' <<<"$out")" "the 4th connection is not served while 3 are open"
assert_eq 200 "$(awk '/^extra_after_close/{print $2}' <<<"$out")" "the 4th is served once one of the 3 closes"
assert_between "$(awk '/^extra_after_close/{print $3}' <<<"$out")" 0 2 "... promptly (s)"
assert_eq 200 "$(awk '/^held2_again/{print $2}' <<<"$out")" "held connections keep being served"
assert_match "$(cat "$CLOG")" 'max_connections \(3\) reached in worker 0' "ferry logs that the limit was reached"
assert_eq 200 "$(http_status "http://127.0.0.1:$PC/")" "a new connection is served once the others are gone"

log "timeouts of every phase, 1 s each"
PT=$(pick_port)
make_config "$WORK/t.yaml" --port "$PT" --backend "$B" --listener client_header_timeout=1s \
    --listener client_body_timeout=1s --listener keepalive_timeout=1s --listener send_timeout=1s
start_ferry "$WORK/t.yaml" "$PT" || finish
T=127.0.0.1:$PT
TLOG=$FERRY_LOG
_grep_count_gt() { [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -gt "$3" ]; }
# closed_at OUTPUT — t (seconds since connect) of the close; resp_at OUTPUT STATUS — t of it
closed_at() { sed -n 's/^\(CLOSED\|RESET\|EOF\) t=\([0-9.]*\) .*/\2/p' <<<"$1" | head -n1; }
resp_at() { sed -n "s/^RESP $2 t=\\([0-9.]*\\).*/\\1/p" <<<"$1" | head -n1; }

# client_header_timeout: the whole head within 1 s of its first byte (the timer does not
# restart with each read). An idle new connection is closed after it too, without a response.
out=$($RAW --timeout 4 "$T" 'send:GET / HTTP/1.1\r\n' sleep:300 'send:Host: a\r\n' sleep:300 'send:X-A: 1\r\n\r\n' read)
assert_match "$out" '^RESP 200' "client_header_timeout=1s: a head trickled over 0.6 s is served"
out=$($RAW --timeout 4 "$T" 'send:GET / HTTP/1.1\r\n' sleep:400 'send:Host: a\r\n' sleep:400 'send:X-A: 1\r\n' readall:4)
printf '%s\n' "$out" | grep -E '^(RESP|CLOSED|RESET|EOF|OPEN)' | sed 's/^/#   /'
assert_match "$out" '^RESP 408' "client_header_timeout=1s: a head still incomplete after 1 s (bytes 0.4 s apart): 408"
assert_between "$(resp_at "$out" 408)" 0.9 2.0 "client_header_timeout=1s: 408 about 1 s after the first byte (s)"
assert_match "$out" '^(CLOSED|RESET)' "client_header_timeout=1s: connection closed after the 408"
out=$($RAW --timeout 4 "$T" sleep:700 'send:GET / HTTP/1.1\r\nHost: a\r\n\r\n' read)
assert_match "$out" '^RESP 200' "client_header_timeout=1s: a new connection sending its head after 0.7 s is served"
out=$($RAW --timeout 4 "$T" waitclose:4)
assert_between "$(closed_at "$out")" 0.9 2.0 "client_header_timeout=1s: a new connection sending nothing is closed after 1 s (s)"

# client_body_timeout: between two reads of the body, not for the whole body.
out=$($RAW --timeout 4 "$T" 'send:POST /sha256 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nb' sleep:600 send:b sleep:600 send:b sleep:600 send:b read)
assert_match "$out" '^RESP 200' "client_body_timeout=1s: a body sent 1 byte every 0.6 s (1.8 s in all) is served"
out=$($RAW --timeout 4 "$T" 'send:POST /sha256 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbb' readall:4)
assert_match "$out" '^RESP 408' "client_body_timeout=1s: a body stalled for more than 1 s: 408"
assert_between "$(resp_at "$out" 408)" 0.9 2.0 "client_body_timeout=1s: 408 about 1 s after the last byte (s)"
assert_match "$out" '^(CLOSED|RESET)' "client_body_timeout=1s: connection closed"
out=$($RAW --timeout 4 "$T" 'send:POST /sha256 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nbb\r\n' readall:4)
assert_match "$out" '^RESP 408' "client_body_timeout=1s: a chunked body stalled for more than 1 s: 408"

# keepalive_timeout: idle between requests.
out=$($RAW --timeout 4 "$T" 'send:GET / HTTP/1.1\r\nHost: a\r\n\r\n' read sleep:600 'send:GET / HTTP/1.1\r\nHost: a\r\n\r\n' read)
assert_eq 2 "$(grep -c '^RESP 200' <<<"$out")" "keepalive_timeout=1s: a request 0.6 s after the previous response is served"
out=$($RAW --timeout 4 "$T" 'send:GET / HTTP/1.1\r\nHost: a\r\n\r\n' read waitclose:4)
st=$(sed -n 's/^CLOSED .*step=\([0-9.]*\)/\1/p' <<<"$out")
assert_between "${st:-99}" 0.9 2.0 "keepalive_timeout=1s: an idle connection is closed 1 s after the response (s)"
out=$($H2PEER --timeout 4 "$T" get:/ wait sleep:600 get:/ wait)
assert_eq 2 "$(grep -c '^RESP [0-9]* 200' <<<"$out")" "keepalive_timeout=1s over h2: a stream 0.6 s after the last one is served"
assert_no_match "$out" '^GOAWAY' "keepalive_timeout=1s over h2: no GOAWAY within 0.6 s of idling"

# send_timeout: between two successful writes to the client. A 32 MB response to a client
# with a 64 KiB receive buffer: pauses of 0.6 s are fine, a stall of 3 s ends the connection.
sendto() { # MODE (pauses|stall) — prints "got=N"; writes $WORK/stall.mark when it stops
    $PY - "$T" "$1" "$WORK/stall.mark" <<'PY'
import socket, sys, time
h, p = sys.argv[1].rsplit(":", 1)
mode, mark = sys.argv[2], sys.argv[3]
N = 32 * 1024 * 1024
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.connect((h, int(p)))
s.sendall(b"GET /big?bytes=%d HTTP/1.1\r\nHost: a\r\n\r\n" % N)
s.settimeout(10)
got = 0
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, body = buf.split(b"\r\n\r\n", 1)
got = len(body)

def read_upto(n):
    global got
    while got < n:
        try:
            d = s.recv(65536)
        except OSError:
            return False
        if not d:
            return False
        got += len(d)
    return True

if mode == "pauses":
    for i in range(5):
        read_upto(got + (1 << 20))
        time.sleep(0.6)
else:
    read_upto(1 << 20)
    open(mark, "w").write("stopped\n")
    time.sleep(3)
read_upto(N)
print("got=%d" % got)
PY
}
n0=$(grep -c 'send_timeout' "$TLOG")
out=$(sendto pauses)
assert_eq "got=33554432" "$out" "send_timeout=1s: a reader pausing 0.6 s five times gets the whole 32 MB"
assert_eq "$n0" "$(grep -c 'send_timeout' "$TLOG")" "send_timeout=1s: no send timeout for it"
rm -f "$WORK/stall.mark"
sendto stall >"$WORK/stall.out" &
sp=$!
_track "$sp"
if wait_for 10 test -f "$WORK/stall.mark"; then
    t0=$(now_ms)
    if wait_for 5 _grep_count_gt "$TLOG" 'send_timeout' "$n0"; then
        assert_between "$(( $(now_ms) - t0 ))e-3" 0.8 2.5 "send_timeout=1s: ferry gives up about 1 s after the client stopped reading (s)"
    else
        fail "send_timeout=1s: no send timeout within 5 s of the client stopping"
    fi
else
    fail "send_timeout=1s: the stalling client did not start"
fi
wait_for 10 _exited "$sp"
out=$(cat "$WORK/stall.out")
got=${out#got=}
assert_gt "$((33554432 - ${got:-33554432}))" 0 "send_timeout=1s: the stalled client's response was cut short (got ${got:-?} of 33554432 bytes)"
assert_eq 200 "$(http_status "http://$T/")" "ferry keeps serving"
finish
