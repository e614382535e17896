#!/bin/bash
# HTTP/2 abuse at the frame level (h2peer.py): rapid reset, forbidden request fields,
# content-length that lies, CONTINUATION flood, PING and SETTINGS floods, malformed frames.
# Each gets the error the RFC requires (where it requires one), nothing invalid reaches the
# backend (a raw recorder), and ferry keeps serving other clients.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_rawrecorder "$WORK/rec" || { fail "start rawrecorder"; finish; }
P=$(pick_port)
# keepalive_requests is raised so that the per-connection stream cap (1000 by default) does not
# end the rapid-reset connection before the flood protection has to.
make_config "$WORK/ferry.yaml" --port "$P" --backend "$REC_ADDR" --workers 1 --listener keepalive_requests=1000000
start_ferry "$WORK/ferry.yaml" "$P" || finish
F=127.0.0.1:$P
PEER=($H2PEER --timeout 5)

# still_serving MESSAGE — a fresh h2 client gets a 200.
still_serving() {
    local s; s=$("${CURL[@]}" --http2-prior-knowledge -o /dev/null -w '%{http_code}' "http://$F/alive" 2>/dev/null)
    assert_eq 200 "$s" "$1: a new client is served"
    alive "$FERRY_PID" || fail "$1: ferry died"
}
# goaway_code OUTPUT — code of the first GOAWAY ("" if none)
goaway_code() { sed -n 's/^GOAWAY last=[0-9]* code=\([A-Z_0-9x]*\) .*/\1/p' <<<"$1" | head -n1; }
closed() { grep -qE '^(CLOSED|RESET) ' <<<"$1"; }
rec_has() { grep -qF -- "$1" "$REC_DIR/requests.log" 2>/dev/null; }

log "(a) rapid reset: 5000 x HEADERS+RST_STREAM while another client is served"
# the normal client: one connection, 40 requests ~50 ms apart
steps=(); for i in $(seq 1 40); do steps+=("get:/normal-$i" wait sleep:50); done
"${PEER[@]}" "$F" "${steps[@]}" >"$WORK/normal.out" 2>&1 &
normal=$!
_track "$normal"
wait_grep "$WORK/normal.out" '^END 1 ' 5 || fail "normal client did not start"
t0=$(now_ms)
out=$("${PEER[@]}" "$F" waitsettings rapidreset:5000 waitclose:10)
log "rapid reset client: $(grep -E '^(RAPIDRESET|GOAWAY|CLOSED|RESET|OPEN|SENDFAIL)' <<<"$out" | xargs)"
code=$(goaway_code "$out")
# (nghttp2's own reset rate limit answers INTERNAL_ERROR; the spec wants the abuse named.)
assert_match "$code" '^(ENHANCE_YOUR_CALM|PROTOCOL_ERROR)$' "rapid reset answered with GOAWAY ENHANCE_YOUR_CALM or PROTOCOL_ERROR"
closed "$out" && pass "rapid reset connection closed ($(( $(now_ms) - t0 )) ms)" || fail "rapid reset connection still open after 10 s"
wait_for 15 _exited "$normal"
nout=$(cat "$WORK/normal.out")
assert_eq 40 "$(grep -c '^RESP [0-9]* 200' <<<"$nout")" "normal client: 40 x 200 during the flood"
assert_no_match "$nout" '^(GOAWAY|RST|CLOSED|RESET)' "normal client's connection undisturbed"
rr=$(grep -c ' GET / HTTP/1.1$' "$REC_DIR/requests.log" 2>/dev/null)
log "requests of the rapid-reset client that reached the backend: ${rr:-0} of 5000; backend connections so far: $(ls "$REC_DIR"/conn-*.bin 2>/dev/null | wc -l)"
still_serving "after rapid reset"

log "(b) connection-specific / invalid request fields: RST_STREAM PROTOCOL_ERROR, not forwarded"
i=0
for h in 'connection:keep-alive' 'transfer-encoding:chunked' 'keep-alive:timeout=5' 'proxy-connection:keep-alive' \
         'upgrade:websocket' 'te:gzip' 'X-Upper:yes' 'x-bad value:1' 'x-ctl:a\x01b'; do
    i=$((i + 1))
    hv=$(printf '%b' "$h")
    out=$("${PEER[@]}" "$F" "hdr:$hv" "get:/bad-field-$i" wait get:/after-bad wait)
    assert_match "$out" '^RST 1 PROTOCOL_ERROR' "field '$h': stream reset PROTOCOL_ERROR (RFC 9113 8.2.1/8.2.2)"
    assert_match "$out" '^RESP 3 200' "field '$h': the connection stays usable (stream error only)"
    rec_has "/bad-field-$i " && fail "field '$h': request reached the backend" || pass "field '$h': not forwarded"
done
out=$("${PEER[@]}" "$F" hdr:te:trailers get:/te-trailers wait)
assert_match "$out" '^RESP 1 200' "te: trailers is allowed"
# pseudo-header problems (RFC 9113 8.3): missing :path, pseudo after regular, unknown pseudo
out=$("${PEER[@]}" "$F" hdr:x-a:1 hdr::path:/late get:/pseudo-late wait)
assert_match "$out" '^RST 1 PROTOCOL_ERROR' "pseudo-header after a regular field: PROTOCOL_ERROR"
out=$("${PEER[@]}" "$F" hdr::foo:bar get:/pseudo-unknown wait)
assert_match "$out" '^RST 1 PROTOCOL_ERROR' "unknown pseudo-header: PROTOCOL_ERROR"
rec_has "/pseudo-" && fail "malformed pseudo-headers reached the backend" || pass "malformed pseudo-headers not forwarded"

log "(c) content-length: 10 with 5 bytes of DATA"
out=$("${PEER[@]}" "$F" hdr:content-length:10 post:/cl-short:5 wait get:/after-cl wait)
assert_match "$out" '^RST 1 PROTOCOL_ERROR' "content-length mismatch: stream reset PROTOCOL_ERROR (RFC 9113 8.1.1)"
assert_no_match "$out" '^RESP 1 ' "no response for the lying request"
out2=$("${PEER[@]}" "$F" hdr:content-length:3 post:/cl-long:5 wait)
assert_match "$out2" '^RST 1 PROTOCOL_ERROR' "more DATA than content-length: stream reset PROTOCOL_ERROR"
for n in 1 2 3; do "${CURL[@]}" --http2-prior-knowledge -o /dev/null "http://$F/after-cl-$n"; done
wait_for 3 rec_has "/after-cl-3 "
# No backend connection may carry a complete 10-byte body for /cl-short (nor a later request
# swallowed as its body): count the bytes that follow its head on its connection.
got=$($PY - "$REC_DIR" <<'PY'
import glob, sys
best = -1
for f in glob.glob(sys.argv[1] + "/conn-*.bin"):
    d = open(f, "rb").read()
    for marker in (b"/cl-short ", b"/cl-long "):
        i = d.find(marker)
        if i < 0:
            continue
        j = d.find(b"\r\n\r\n", i)
        rest = len(d) - (j + 4) if j >= 0 else 0
        lim = 10 if marker == b"/cl-short " else 3
        best = max(best, 1 if rest >= lim else 0)
print(best)
PY
)
assert_match "$got" '^(-1|0)$' "the backend never got a complete body for a lying content-length (-1: head not forwarded)"
for n in 1 2 3; do rec_has "/after-cl-$n " || fail "later request /after-cl-$n did not reach the backend as a request"; done
still_serving "after content-length mismatch"

log "(d) CONTINUATION flood: 2000 x 1 KiB without END_HEADERS"
t0=$(now_ms)
out=$("${PEER[@]}" "$F" waitsettings contflood:2000 waitclose:5)
log "$(grep -E '^(CONTFLOOD|GOAWAY|CLOSED|RESET|OPEN|SENDFAIL)' <<<"$out" | xargs)"
code=$(goaway_code "$out")
assert_ne "" "$code" "CONTINUATION flood: GOAWAY sent"
assert_ne "NO_ERROR" "$code" "CONTINUATION flood: GOAWAY is an error ($code)"
closed "$out" && pass "CONTINUATION flood: connection closed ($(( $(now_ms) - t0 )) ms)" || fail "CONTINUATION flood: connection still open"
still_serving "after CONTINUATION flood"

flood() { # NAME STEP
    local t0 rss0 rss1 out code
    rss0=$(ferry_rss_kb "$FERRY_PID"); t0=$(now_ms)
    # A small receive buffer on the flooding client: the ACKs back up in ferry, not in the kernel.
    out=$("${PEER[@]}" --rcvbuf 32768 "$F" waitsettings "$2" waitclose:10)
    rss1=$(ferry_rss_kb "$FERRY_PID")
    log "$1: $(grep -E '^(PINGFLOOD|SETTINGSFLOOD|GOAWAY|CLOSED|RESET|OPEN|SENDFAIL|COUNTS)' <<<"$out" | xargs) rss ${rss0}->${rss1} kB"
    code=$(goaway_code "$out")
    assert_eq "ENHANCE_YOUR_CALM" "$code" "$1: GOAWAY ENHANCE_YOUR_CALM"
    closed "$out" && pass "$1: connection closed ($(( $(now_ms) - t0 )) ms)" || fail "$1: connection still open 10 s later"
    if ferry_is_asan; then log "$1: RSS not asserted under ASan"
    else assert_le "$(( rss1 - rss0 ))" 32768 "$1: ferry RSS growth (kB)"; fi
    still_serving "after $1"
}
log "(e) PING and SETTINGS floods, nothing read meanwhile"
flood "PING flood" pingflood:1000000
flood "SETTINGS flood" settingsflood:2000000

log "(f) malformed frames: connection errors"
conn_err() { # NAME EXPECTED-CODE STEPS...
    local name=$1 want=$2 out; shift 2
    out=$("${PEER[@]}" "$F" waitsettings "$@" waitclose:5)
    assert_eq "$want" "$(goaway_code "$out")" "$name: GOAWAY $want"
    closed "$out" && pass "$name: connection closed" || fail "$name: connection still open"
}
conn_err "DATA on stream 0 (RFC 9113 6.1)" PROTOCOL_ERROR data0
conn_err "HEADERS with Pad Length >= payload (RFC 9113 6.2)" PROTOCOL_ERROR badpad
conn_err "HEADERS on an even stream id (RFC 9113 5.1.1)" PROTOCOL_ERROR hdrs:2
conn_err "stream id going backwards (RFC 9113 5.1.1)" PROTOCOL_ERROR hdrs:5 hdrs:3
conn_err "PING of length 7 (RFC 9113 6.7)" FRAME_SIZE_ERROR raw:0000070600000000000000000000000000
conn_err "WINDOW_UPDATE of 0 on the connection (RFC 9113 6.9)" PROTOCOL_ERROR raw:000004080000000000000000000000
conn_err "SETTINGS_ENABLE_PUSH=2 (RFC 9113 6.5.2)" PROTOCOL_ERROR settings:ENABLE_PUSH=2
conn_err "SETTINGS_INITIAL_WINDOW_SIZE=2^31 (RFC 9113 6.5.2)" FLOW_CONTROL_ERROR settings:INITIAL_WINDOW_SIZE=2147483648
conn_err "SETTINGS ACK with a payload (RFC 9113 6.5)" FRAME_SIZE_ERROR raw:000006040100000000000300000064
conn_err "CONTINUATION without HEADERS (RFC 9113 6.10)" PROTOCOL_ERROR raw:000000090400000001
still_serving "after malformed frames"
rec_has "/bad-field-" && fail "some invalid request reached the backend" || pass "no invalid request reached the backend"
finish
